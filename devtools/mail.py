"""Print the mail the local SES endpoint captured, decoded, with its links (to click or copy).

  python -m devtools.mail                 # every captured mail
  python -m devtools.mail --to reader@example.org --last 1
  python -m devtools.mail --links         # only the links, one a line

Reads `GET /_aws/ses` of the endpoint `make run` uses (AWS_ENDPOINT_URL, else the embedded
emulator on http://127.0.0.1:$EMULATOR_PORT, default 4566; LocalStack serves the same
endpoint). The recorded mails are raw RFC 5322 text, quoted-printable, so a link in them is
broken over lines and `=3D`-escaped; here each body is decoded (the standard library's
`email` parser) before it is printed.
"""

from __future__ import annotations

import argparse
import os
import re
import sys
from email import message_from_string
from email.message import EmailMessage
from email.policy import default
from typing import Any

import requests

LINK = re.compile(r"https?://[^\s<>\"')]+")


def endpoint() -> str:
    """Where the captured mail is served: the app's AWS endpoint, else `make run`'s emulator."""
    configured = os.environ.get("AWS_ENDPOINT_URL_SES") or os.environ.get("AWS_ENDPOINT_URL")
    return (configured or f"http://127.0.0.1:{os.environ.get('EMULATOR_PORT', '4566')}").rstrip("/")


def parsed(message: dict[str, Any]) -> EmailMessage:
    """A captured mail as a parsed message (raw mail as sent, or SES's simple form)."""
    if "RawData" in message:
        return message_from_string(message["RawData"], policy=default)
    built = EmailMessage()
    built["Subject"] = message.get("Subject", "")
    built.set_content((message.get("Body") or {}).get("text_part") or "")
    return built


def recipients(message: dict[str, Any]) -> list[str]:
    destination = message.get("Destination") or {}
    found = [str(a) for a in destination.get("ToAddresses", [])] if isinstance(destination, dict) else []
    return list(dict.fromkeys(found))  # the emulator may record an address once per header and envelope


def decoded(message: dict[str, Any]) -> tuple[EmailMessage, str]:
    """The parsed mail and its text, quoted-printable or base64 undone (the HTML part if there is no text)."""
    mail = parsed(message)
    body = mail.get_body(preferencelist=("plain", "html"))
    return mail, body.get_content() if body is not None else ""


def links(text: str) -> list[str]:
    """Every http(s) link of a decoded text, in order, once each."""
    return list(dict.fromkeys(url.rstrip(".,;") for url in LINK.findall(text)))


def render(message: dict[str, Any]) -> str:
    mail, text = decoded(message)
    head = [
        f"To:      {', '.join(recipients(message)) or mail.get('To', '')}",
        f"From:    {mail.get('From') or message.get('Source', '')}",
        f"Subject: {mail.get('Subject', '')}",
    ]
    if message.get("Timestamp"):
        head.append(f"Date:    {message['Timestamp']}")
    if mail.get("List-Unsubscribe"):
        head.append(f"List-Unsubscribe: {mail['List-Unsubscribe']}")
    found = links(text)
    parts = ["\n".join(head), text.rstrip()]
    if found:
        parts.append("Links:\n" + "\n".join(f"  {url}" for url in found))
    return "\n\n".join(parts)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--to", help="only mail to this address")
    parser.add_argument("--last", type=int, help="only the last N mails")
    parser.add_argument("--links", action="store_true", help="print only the links, one a line")
    args = parser.parse_args(argv)
    url = f"{endpoint()}/_aws/ses"
    try:
        response = requests.get(url, timeout=10)
        response.raise_for_status()
    except requests.RequestException as exc:
        print(f"no captured mail at {url} ({exc.__class__.__name__}); is `make run` running?", file=sys.stderr)
        return 2
    messages = list(response.json().get("messages", []))
    if args.to:
        messages = [m for m in messages if args.to.lower() in (a.lower() for a in recipients(m))]
    if args.last:
        messages = messages[-args.last :]
    if args.links:
        for message in messages:
            for link in links(decoded(message)[1]):
                print(link)
        return 0
    print(f"{len(messages)} mail(s) at {url}", file=sys.stderr)
    for number, message in enumerate(messages, 1):
        print(f"--- mail {number} of {len(messages)} " + "-" * 40)
        print(render(message))
    return 0


if __name__ == "__main__":
    sys.exit(main())
