"""Email through Amazon SES, built so that no input can add or split a header.

Every mail is a MIME message made here with the standard library's `email` package and
sent raw (SES v2 `SendEmail` with `Content.Raw`), because only a raw or v2 message can
carry `List-Unsubscribe` headers. Anything that lands in a header goes through
`header_text` first: controls (C0, C1, DEL), line and paragraph separators and bidi
overrides become spaces, so a title such as "Line1\\r\\nBcc: v@example.org" stays one
subject line; non-ASCII text is then RFC 2047-encoded by the `email` policy.

Addresses are never encoded that way (RFC 2047 forbids an encoded word inside an address):
`mailbox` gives the ASCII form, the domain in IDNA, and an address that has none (a
non-ASCII local part) is an `UnmailableAddress`, which a task treats as permanent.
"""

from __future__ import annotations

import re
import unicodedata
from email.errors import MessageError
from email.headerregistry import Address
from email.message import EmailMessage
from email.policy import SMTP
from email.utils import formatdate, make_msgid

from chalicelib.platform.aws import client
from chalicelib.platform.config import get_settings
from chalicelib.platform.validation import mail_address

MAX_HEADER_CHARS = 400
_BIDI_CONTROLS = {chr(c) for c in (*range(0x202A, 0x202F), *range(0x2066, 0x206A), 0x200E, 0x200F, 0x061C)}


_ATEXT = r"[!#-'*+\-/-9=?A-Z^-~]+"  # RFC 5322 atext: a dot-atom local part is these, split by dots
_PLAIN_ASCII_ADDRESS = re.compile(rf"{_ATEXT}(?:\.{_ATEXT})*@[A-Za-z0-9-]+(?:\.[A-Za-z0-9-]+)+")


class UnmailableAddress(MessageError):
    """No mail can ever reach this address as it is written (retrying cannot help)."""


def mailbox(address: str) -> str:
    """`address` as it goes into `To:` and SES: ASCII, the domain in IDNA; else UnmailableAddress.

    Rows written before the API refused such addresses may still hold a Unicode domain or
    a non-ASCII local part, so the mail layer checks for itself.
    """
    if address.isascii() and _PLAIN_ASCII_ADDRESS.fullmatch(address):
        return address  # the common case, checked when it was stored; email-validator's cost: bench/README.md
    try:
        return mail_address(address)
    except ValueError as exc:
        raise UnmailableAddress(f"cannot mail {address[:254]!r}: {exc}") from None


def header_text(value: str, limit: int = MAX_HEADER_CHARS) -> str:
    """`value` made safe for one header line: no controls, separators or bidi overrides."""
    cleaned = "".join(
        " " if unicodedata.category(ch) in ("Cc", "Zl", "Zp") or ch in _BIDI_CONTROLS else ch for ch in value
    )
    cleaned = " ".join(cleaned.split())
    return cleaned if len(cleaned) <= limit else cleaned[: limit - 1] + "…"


def body_text(value: str) -> str:
    """Text for a mail body: keeps line breaks, drops other controls and bidi overrides."""
    value = value.replace("\r\n", "\n").replace("\r", "\n")
    return "".join(
        ch
        for ch in value
        if ch in "\n\t" or not (unicodedata.category(ch) == "Cc" or ch in _BIDI_CONTROLS or ch in "\u2028\u2029")
    )


def unsubscribe_headers(url: str) -> dict[str, str]:
    """RFC 2369 / RFC 8058 headers: the link, and that one POST to it is enough."""
    return {"List-Unsubscribe": f"<{url}>", "List-Unsubscribe-Post": "List-Unsubscribe=One-Click"}


def build_message(to: str, subject: str, text: str, headers: dict[str, str] | None = None) -> bytes:
    """A complete RFC 5322 message; every header value is cleaned first."""
    settings = get_settings()
    message = EmailMessage(policy=SMTP)
    message["From"] = Address(addr_spec=header_text(settings.mail_sender))
    message["To"] = Address(addr_spec=mailbox(to))
    message["Subject"] = header_text(subject)
    message["Date"] = formatdate(usegmt=True)
    message["Message-ID"] = make_msgid(domain=settings.mail_sender.rpartition("@")[2] or None)
    for name, value in (headers or {}).items():
        message[header_text(name, 76).replace(":", "")] = header_text(value, 900)
    message.set_content(body_text(text), charset="utf-8")
    return message.as_bytes()


def send_email(to: str, subject: str, text: str, headers: dict[str, str] | None = None) -> str:
    """Send one plain-text mail; returns the SES message id."""
    response = client("sesv2").send_email(
        FromEmailAddress=get_settings().mail_sender,
        Destination={"ToAddresses": [mailbox(to)]},
        Content={"Raw": {"Data": build_message(to, subject, text, headers)}},
    )
    return str(response["MessageId"])
