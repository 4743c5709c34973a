"""Reading the mail the SES endpoint recorded, and the consent steps a subscriber takes."""

from __future__ import annotations

import re
from email import message_from_string
from email.message import EmailMessage
from email.policy import default
from typing import Any, cast
from urllib.parse import quote, urlsplit

from helpers import eventually

FORM = "application/x-www-form-urlencoded"
LINK = re.compile(r"https?://[^\s<>]+/subscriptions/(?:confirm|unsubscribe)\?token=[^\s<>]+")


def parsed(message: dict[str, Any]) -> EmailMessage:
    """The recorded mail as a parsed RFC 5322 message (raw mail as sent, or SES's simple form)."""
    if "RawData" in message:
        return message_from_string(message["RawData"], policy=default)
    built = EmailMessage()
    built["Subject"] = message.get("Subject", "")
    built.set_content((message.get("Body") or {}).get("text_part") or "")
    return built


def text(message: dict[str, Any]) -> str:
    body = parsed(message).get_body(preferencelist=("plain",))
    return body.get_content() if body is not None else ""


def links(message: dict[str, Any], kind: str) -> list[str]:
    """Links to /subscriptions/<kind> in the mail's text."""
    return [url for url in LINK.findall(text(message)) if f"/subscriptions/{kind}?" in url]


def path_of(url: str) -> str:
    """The path and query of a link, to call through the `api` fixture."""
    parts = urlsplit(url)
    return f"{parts.path}?{parts.query}"


def subscribers_path(author: str) -> str:
    return f"/authors/{quote(author, safe='')}/subscribers"


def confirmation_mails(mailbox: Any, email: str) -> list[dict[str, Any]]:
    return [m for m in mailbox.messages(to=email) if links(m, "confirm")]


def book_mails(mailbox: Any, email: str) -> list[dict[str, Any]]:
    return [m for m in mailbox.messages(to=email) if links(m, "unsubscribe")]


def confirm(api: Any, mailbox: Any, email: str, count: int = 1) -> dict[str, Any]:
    """Wait for the `count`-th confirmation mail to `email` and follow its link; returns the mail."""
    mails = eventually(
        lambda: (found := confirmation_mails(mailbox, email)) and len(found) >= count and found,
        timeout=60,
        what=f"confirmation mail #{count} to {email}",
    )
    follow(api, links(mails[-1], "confirm")[0])
    return cast("dict[str, Any]", mails[-1])


def follow(api: Any, link: str) -> None:
    """Confirm as a reader does: open the link (a page with a button), then press the button (a POST)."""
    status, page = api.get(path_of(link), user=None)
    assert status == 200 and '<form method="post"' in page, page
    status, page = api.post(path_of(link), user=None, raw=b"confirm=yes", content_type=FORM)
    assert status == 200 and "Subscription confirmed" in page, page


def subscribe_confirmed(api: Any, mailbox: Any, author: str, email: str, user: str = "alice") -> None:
    """Subscribe over the API, then confirm as the address owner would (the workers must run)."""
    status, _ = api.post(subscribers_path(author), {"email": email}, user=user)
    assert status == 201
    confirm(api, mailbox, email)


def seed_confirmed(author: str, email: str, owner: str = "alice") -> None:
    """A confirmed subscription written straight to the table (setup for tests about other things)."""
    from chalicelib.platform.authors import author_key
    from chalicelib.platform.dynamodb import utcnow
    from chalicelib.subscriptions.models import Subscriber

    Subscriber(
        author_key(author), email.lower(), author=author, owner=owner, status="confirmed", confirmed_at=utcnow()
    ).save()
