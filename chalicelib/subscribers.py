"""Subscriptions: who hears of new books by an author."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

from pynamodb.exceptions import DoesNotExist

from chalicelib.authors import author_key
from chalicelib.errors import Forbidden, NotFound, ValidationFailed
from chalicelib.models import Subscriber
from chalicelib.pagination import decode_cursor, encode_cursor, listing_scope
from chalicelib.schemas import Page


def _key(author: str) -> str:
    key = author_key(author)
    if not key or len(key) > 200:
        raise ValidationFailed("invalid author", [{"field": "name", "message": "must be 1 to 200 characters"}])
    return key


def subscribe(author: str, email: str, owner: str) -> dict[str, Any]:
    """Add (or keep) a subscription; idempotent."""
    sub = Subscriber(_key(author), email.lower(), author=author.strip(), owner=owner)
    sub.save()
    return view(sub)


def unsubscribe(author: str, email: str, owner: str) -> None:
    """Remove a subscription made by `owner`."""
    try:
        sub = Subscriber.get(_key(author), email.lower())
    except DoesNotExist:
        raise NotFound(f"{email} is not subscribed to {author}") from None
    if sub.owner != owner:
        raise Forbidden("that subscription belongs to another user")
    sub.delete()


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


def emails_for(author: str) -> Iterator[str]:
    """Every subscribed email address of an author."""
    for sub in Subscriber.query(author_key(author)):
        yield sub.email


def view(sub: Subscriber) -> dict[str, Any]:
    """JSON form."""
    return {"author": sub.author, "email": sub.email, "created_at": sub.created_at.isoformat()}
