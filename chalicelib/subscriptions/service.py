"""Subscriptions made over the API: who hears of new books by an author, once the address agrees."""

from __future__ import annotations

import time

from chalicelib.platform import validation
from chalicelib.platform.authors import author_key
from chalicelib.platform.config import get_settings
from chalicelib.platform.errors import NotFound, ValidationFailed
from chalicelib.platform.observability import logger
from chalicelib.platform.pagination import decode_cursor, encode_cursor, listing_scope
from chalicelib.platform.schemas import Page
from chalicelib.subscriptions import answers
from chalicelib.subscriptions import store as subscriptions
from chalicelib.subscriptions.consent import CONFIRMATION_FAILED, CONFIRMED, PENDING
from chalicelib.subscriptions.store import Change, Guard, Subscription
from chalicelib.tasks.dispatch import dispatch
from chalicelib.tasks.registry import get_task

# Named, not imported: `chalicelib.app_tasks` declares it and sits above the domains. `app` imports `jobs`.
CONFIRM_TASK = "subscriptions.send_confirmation"


def _key(author: str) -> str:
    key = author_key(author)
    if not key or len(key) > 200:
        raise ValidationFailed("invalid author", [{"field": "name", "message": "must be 1 to 200 characters"}])
    return key


def subscribe(author: str, email: str, owner: str) -> answers.Subscription:
    """Start a subscription (pending until the address confirms) or keep the one there is.

    The first caller owns the row for good. Anyone else gets the answer a new subscriber
    gets, so the API never tells whether someone else subscribed the address. A
    confirmation mail goes out when the row is not confirmed and none went out in the
    last CONFIRM_RESEND_SECONDS (a re-subscribe after unsubscribing sends one at once).
    """
    key, email = _key(author), email.lower()
    store = subscriptions.current()
    now = int(time.time())
    fresh = Subscription(key, email, author=author.strip(), owner=owner, status=PENDING, confirm_sent_at=now)
    sub, mail_now = fresh, store.create(fresh)
    if not mail_now:
        found = store.get(key, email)
        if found is None:  # deleted between the two calls: it is new again
            return subscribe(author, email, owner)
        taken = _take_resend_slot(found)
        sub, mail_now = taken or found, taken is not None
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


def _take_resend_slot(sub: Subscription) -> Subscription | None:
    """The row as written when this call may send a new confirmation mail (one per resend interval), else None."""
    if sub.status == CONFIRMED:
        return None
    now = int(time.time())
    # A subscription whose last mail failed is pending again with the new mail.
    failed = sub.status == CONFIRMATION_FAILED
    change = Change(
        set={"confirm_sent_at": now, **({"status": PENDING} if failed else {})},
        remove=("confirm_error",) if failed else (),
    )
    guard = Guard(
        status=CONFIRMATION_FAILED if failed else None,
        status_not=None if failed else CONFIRMED,
        sent_before=now - get_settings().confirm_resend_seconds,
    )
    return subscriptions.current().update(sub.author_key, sub.email, change, guard)


def _release_resend_slot(sub: Subscription) -> None:
    """Forget the last confirmation mail's time (best effort: the caller re-raises its own error)."""
    try:
        subscriptions.current().update(sub.author_key, sub.email, Change(remove=("confirm_sent_at",)))
    except Exception:  # noqa: BLE001 - the outage that failed the dispatch may fail this too
        logger.warning("could not release the confirmation resend slot", extra={"author": sub.author_key})


def unsubscribe(author: str, email: str, owner: str) -> None:
    """Remove a subscription made by `owner`.

    Someone else's subscription is answered exactly as no subscription (the same 404, the
    same body): a 403 would tell any caller which addresses are subscribed to an author.
    """
    store = subscriptions.current()
    sub = store.get(_key(author), _stored_form(email), consistent=False)
    if sub is None or sub.owner != owner:
        raise NotFound(
            "you have no subscription of this address to this author",
            [{"field": "email", "message": "not among your subscriptions to this author"}],
        )
    store.delete(sub.author_key, sub.email)


def _stored_form(email: str) -> str:
    """The address as `subscribe` stored it (IDNA domain, lower case), so either spelling finds it."""
    try:
        return validation.mail_address(email)
    except ValueError:
        return email.lower()  # no such row can exist; the lookup answers 404


def list_subscribers(author: str, owner: str, page: Page) -> answers.SubscriberPage:
    """A page of the subscriptions `owner` made to this author."""
    key = _key(author)
    scope = listing_scope("subscribers", author=key, owner=owner)
    found = subscriptions.current().page(key, owner, page.limit, decode_cursor(page.cursor, scope))
    return {"items": [view(s) for s in found.rows], "next_cursor": encode_cursor(found.last_key, scope)}


def view(sub: Subscription) -> answers.Subscriber:
    """JSON form."""
    created = sub.created_at.isoformat() if sub.created_at else None
    return {"author": sub.author, "email": sub.email, "status": sub.status, "created_at": created}
