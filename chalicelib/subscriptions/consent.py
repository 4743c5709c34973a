"""Double opt-in: confirmation mails, confirming by link, unsubscribing by link.

Only the address's owner acts here (whoever holds the mail): the API caller who made a
subscription can start it but never confirm it, so the confirmation token is made inside
the mail task and never appears in a task record or an API answer.
"""

from __future__ import annotations

import time
from typing import Any

from chalicelib.platform import mailer as mail
from chalicelib.platform.config import get_settings
from chalicelib.platform.dynamodb import utcnow
from chalicelib.subscriptions import store as subscriptions
from chalicelib.subscriptions import tokens
from chalicelib.subscriptions.store import Change, Guard, Subscription
from chalicelib.subscriptions.tokens import BadToken, GoneToken

PENDING, CONFIRMED, UNSUBSCRIBED = "pending", "confirmed", "unsubscribed"
# The confirmation mail could not be sent (e.g. SES refused the address): nothing will come,
# so the owner sees why, and subscribing again sends a new mail at once (the resend slot is free).
CONFIRMATION_FAILED = "confirmation_failed"


def _get(author_key: str, email: str) -> Subscription | None:
    return subscriptions.current().get(author_key, email)


def send_confirmation(author_key: str, email: str) -> dict[str, Any]:
    """Mail a fresh single-use confirmation link (unless the address is confirmed already)."""
    sub = _get(author_key, email)
    if sub is None or sub.status == CONFIRMED:
        return {"skipped": "nothing to confirm"}
    token, digest = tokens.new_confirmation(author_key, email)
    now = int(time.time())
    fields = {
        "confirm_hash": digest,
        "confirm_expires": now + get_settings().confirm_token_ttl_seconds,
        "confirm_sent_at": now,
    }
    if subscriptions.current().update(author_key, email, Change(set=fields), Guard(status_not=CONFIRMED)) is None:
        return {"skipped": "confirmed meanwhile"}
    days = max(1, get_settings().confirm_token_ttl_seconds // 86400)
    text = (
        f"Someone asked to send this address news of books by {sub.author}.\n\n"
        f"To confirm, open this link and press the button on the page (valid for {days} day(s), once):\n"
        f"{tokens.confirm_url(token)}\n\n"
        "If this was not you, ignore this mail: nothing will be sent without your confirmation.\n"
    )
    message_id = mail.send_email(email, f"Confirm your subscription to {sub.author}", text)
    return {"message_id": message_id}


def confirmation_failed(author_key: str, email: str, reason: str) -> bool:
    """The confirmation mail failed for good: a pending subscription says so (with why), and the
    resend slot is freed so that subscribing again mails a new link. False when nothing changed."""
    for fields, status in (
        ({"status": CONFIRMATION_FAILED, "confirm_error": reason[:1000]}, PENDING),
        ({}, UNSUBSCRIBED),  # stays unsubscribed; a new subscribe may mail again
    ):
        change = Change(set=fields, remove=("confirm_sent_at", "confirm_hash", "confirm_expires"))
        if subscriptions.current().update(author_key, email, change, Guard(exists=True, status=status)) is not None:
            return True
    return False


def _live_confirmation(token: str | None) -> tuple[Subscription, str, int]:
    """The subscription a confirmation token may still confirm, its hash and now; else 400/410."""
    author_key, email, digest = tokens.read_confirmation(token)
    sub = _get(author_key, email)
    if sub is None:
        raise BadToken()
    if sub.used_hash == digest:
        raise GoneToken("this link was used already")
    if sub.confirm_hash != digest:
        raise BadToken()
    now = int(time.time())
    if int(sub.confirm_expires or 0) <= now:
        raise GoneToken("this link has expired; subscribe again for a new one")
    return sub, digest, now


def confirm_target(token: str | None) -> dict[str, Any]:
    """What a confirmation link would confirm (for the page a GET shows), changing nothing.

    Mail scanners and link previews fetch every link in a mail, so a GET must not confirm:
    only the page's button (a POST) does. A bad, expired or used link fails here already.
    """
    sub, _, _ = _live_confirmation(token)
    return {"author": sub.author, "email": sub.email, "status": sub.status}


def confirm(token: str | None) -> dict[str, Any]:
    """Confirm the subscription a confirmation link names (a POST); 400 bad token, 410 expired/used."""
    sub, digest, now = _live_confirmation(token)
    change = Change(
        set={"status": CONFIRMED, "confirmed_at": utcnow(), "used_hash": digest},
        remove=("confirm_hash", "confirm_expires", "confirm_sent_at"),
    )
    guard = Guard(confirm_hash=digest, expires_after=now)
    if subscriptions.current().update(sub.author_key, sub.email, change, guard) is None:
        raise GoneToken("this link was used already")
    return {"status": CONFIRMED, "author": sub.author, "email": sub.email}


def unsubscribe_target(token: str | None) -> dict[str, Any]:
    """What an unsubscribe link would stop (for the page a GET shows); 400 when not ours."""
    author_key, email = tokens.read_unsubscribe(token)
    sub = _get(author_key, email)
    return {
        "author": sub.author if sub else author_key,
        "email": email,
        "status": sub.status if sub else UNSUBSCRIBED,
    }


def unsubscribe(token: str | None) -> dict[str, Any]:
    """Stop mail for the subscription an unsubscribe link names (idempotent).

    The row stays, marked unsubscribed: an API subscribe of the same address later cannot
    turn mail back on; only the address confirming a new link can.
    """
    author_key, email = tokens.read_unsubscribe(token)
    sub = _get(author_key, email)
    if sub is not None:  # a row deleted meanwhile stays deleted (the guard: it exists)
        change = Change(
            set={"status": UNSUBSCRIBED, "unsubscribed_at": utcnow()},
            remove=("confirm_hash", "confirm_expires", "confirm_sent_at"),
        )
        subscriptions.current().update(author_key, email, change, Guard(exists=True))
    return {"status": UNSUBSCRIBED, "author": sub.author if sub else author_key, "email": email}
