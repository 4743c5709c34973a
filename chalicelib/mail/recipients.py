"""Confirmed subscribers of a book's authors, read one bounded chunk at a time.

A position is `{"a": author index, "k": DynamoDB key to start after or None}`; None means
done. Reading never loads more than one read's worth (a few hundred rows): a popular
author's million subscribers are walked in key order, one Query per read (plus more only
when unconfirmed rows are filtered out). Someone subscribed to two authors of the book is mailed once, for the
first of them.
"""

from __future__ import annotations

from typing import Any, NamedTuple

from chalicelib.subscriptions.models import Subscriber

CONFIRMED = "confirmed"
START: dict[str, Any] = {"a": 0, "k": None}


class Recipient(NamedTuple):
    """A confirmed address, the author key it is mailed for, and that author's index in the book."""

    email: str
    author_key: str
    author_index: int


def _already_mailed(keys: list[str], index: int, emails: list[str]) -> set[str]:
    """Emails confirmed for an earlier author of the same book (they get that author's mail)."""
    if index == 0 or not emails:
        return set()
    wanted = [(key, email) for key in keys[:index] for email in emails]
    return {sub.email for sub in Subscriber.batch_get(wanted) if sub.status == CONFIRMED}


def read(keys: list[str], position: dict[str, Any], size: int) -> tuple[list[Recipient], dict[str, Any] | None]:
    """Up to `size` recipients from `position`, and the position after them."""
    found: list[Recipient] = []
    index, start = int(position["a"]), position.get("k")
    while index < len(keys) and len(found) < size:
        want = size - len(found)
        rows = Subscriber.query(
            keys[index],
            filter_condition=Subscriber.status == CONFIRMED,
            limit=want,
            page_size=want,
            last_evaluated_key=start,
        )
        emails = [row.email for row in rows]
        skip = _already_mailed(keys, index, emails)
        found += [Recipient(email, keys[index], index) for email in emails if email not in skip]
        start = rows.last_evaluated_key
        if start is None:
            index, start = index + 1, None
    return found, ({"a": index, "k": start} if index < len(keys) else None)


def after(recipient: Recipient) -> dict[str, Any]:
    """The position just after one recipient (what DynamoDB's LastEvaluatedKey would be there)."""
    return {
        "a": recipient.author_index,
        "k": {"author_key": {"S": recipient.author_key}, "email": {"S": recipient.email}},
    }
