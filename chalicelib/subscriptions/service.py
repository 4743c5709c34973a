"""Subscriptions made over the API: who hears of new books by an author, once the address agrees."""

from __future__ import annotations

import time
from typing import Any

from pynamodb.exceptions import DoesNotExist, PutError, UpdateError

from chalicelib.platform import validation
from chalicelib.platform.authors import author_key
from chalicelib.platform.config import get_settings
from chalicelib.platform.dynamodb import condition_failed
from chalicelib.platform.errors import NotFound, ValidationFailed
from chalicelib.platform.observability import logger
from chalicelib.platform.pagination import decode_cursor, encode_cursor, listing_scope
from chalicelib.platform.schemas import Page
from chalicelib.subscriptions.consent import CONFIRMATION_FAILED, CONFIRMED, PENDING
from chalicelib.subscriptions.models import Subscriber
from chalicelib.tasks.dispatch import dispatch
from chalicelib.tasks.registry import get_task

# Named, not imported: `chalicelib.app_tasks` declares it and sits above the domains. `app` imports `jobs`.
CONFIRM_TASK = "subscriptions.send_confirmation"


def _key(author: str) -> str:
    key = author_key(author)
    if not key or len(key) > 200:
        raise ValidationFailed("invalid author", [{"field": "name", "message": "must be 1 to 200 characters"}])
    return key


def subscribe(author: str, email: str, owner: str) -> dict[str, Any]:
    """Start a subscription (pending until the address confirms) or keep the one there is.

    The first caller owns the row for good. Anyone else gets the answer a new subscriber
    gets, so the API never tells whether someone else subscribed the address. A
    confirmation mail goes out when the row is not confirmed and none went out in the
    last CONFIRM_RESEND_SECONDS (a re-subscribe after unsubscribing sends one at once).
    """
    key, email = _key(author), email.lower()
    sub = Subscriber(key, email, author=author.strip(), owner=owner, status=PENDING, confirm_sent_at=int(time.time()))
    try:
        sub.save(condition=Subscriber.email.does_not_exist())
        mail_now = True
    except PutError as exc:
        if not condition_failed(exc):
            raise
        sub = Subscriber.get(key, email, consistent_read=True)
        mail_now = _take_resend_slot(sub)
    if mail_now:
        try:
            dispatch([get_task(CONFIRM_TASK).s(key, email)], owner=owner)
        except Exception:
            # The task's record could not be written, so no mail will go: give the resend slot
            # back, so the client's retry of this 503 sends one (SQS failures do not raise: the
            # outbox relay sends those).
            _release_resend_slot(sub)
            raise
    return {"author": author.strip(), "email": email, "status": sub.status if sub.owner == owner else PENDING}


def _take_resend_slot(sub: Subscriber) -> bool:
    """True when this call may send a new confirmation mail (one per resend interval)."""
    if sub.status == CONFIRMED:
        return False
    now = int(time.time())
    # A subscription whose last mail failed is pending again with the new mail.
    retry = [Subscriber.status.set(PENDING), Subscriber.confirm_error.remove()]
    failed = sub.status == CONFIRMATION_FAILED
    try:
        sub.update(
            actions=[Subscriber.confirm_sent_at.set(now), *(retry if failed else [])],
            condition=(Subscriber.status == CONFIRMATION_FAILED if failed else Subscriber.status != CONFIRMED)
            & (
                Subscriber.confirm_sent_at.does_not_exist()
                | (Subscriber.confirm_sent_at < now - get_settings().confirm_resend_seconds)
            ),
        )
    except UpdateError as exc:
        if condition_failed(exc):
            return False
        raise
    return True


def _release_resend_slot(sub: Subscriber) -> None:
    """Forget the last confirmation mail's time (best effort: the caller re-raises its own error)."""
    try:
        sub.update(actions=[Subscriber.confirm_sent_at.remove()])
    except Exception:  # noqa: BLE001 - the outage that failed the dispatch may fail this too
        logger.warning("could not release the confirmation resend slot", extra={"author": sub.author_key})


def unsubscribe(author: str, email: str, owner: str) -> None:
    """Remove a subscription made by `owner`.

    Someone else's subscription is answered exactly as no subscription (the same 404, the
    same body): a 403 would tell any caller which addresses are subscribed to an author.
    """
    try:
        sub = Subscriber.get(_key(author), _stored_form(email))
    except DoesNotExist:
        sub = None
    if sub is None or sub.owner != owner:
        raise NotFound(
            "you have no subscription of this address to this author",
            [{"field": "email", "message": "not among your subscriptions to this author"}],
        )
    sub.delete()


def _stored_form(email: str) -> str:
    """The address as `subscribe` stored it (IDNA domain, lower case), so either spelling finds it."""
    try:
        return validation.mail_address(email)
    except ValueError:
        return email.lower()  # no such row can exist; the lookup answers 404


def list_subscribers(author: str, owner: str, page: Page) -> dict[str, Any]:
    """A page of the subscriptions `owner` made to this author."""
    key = _key(author)
    scope = listing_scope("subscribers", author=key, owner=owner)
    rows = Subscriber.query(
        key,
        filter_condition=Subscriber.owner == owner,
        limit=page.limit,
        last_evaluated_key=decode_cursor(page.cursor, scope),
    )
    items = [view(s) for s in rows]
    return {"items": items, "next_cursor": encode_cursor(rows.last_evaluated_key, scope)}


def view(sub: Subscriber) -> dict[str, Any]:
    """JSON form."""
    return {"author": sub.author, "email": sub.email, "status": sub.status, "created_at": sub.created_at.isoformat()}
