"""Confirmed subscribers of a book's authors, read one bounded chunk at a time.

A position is `{"a": author index, "k": DynamoDB key to start after or None}`; None means
done. Reading never loads more than one chunk: a popular author's million subscribers are
walked in key order, one Query per chunk (plus more only when unconfirmed rows are
filtered out). Someone subscribed to two authors of the book is mailed once, for the
first of them.
"""

from __future__ import annotations

from typing import Any

from chalicelib.models import Subscriber

CONFIRMED = "confirmed"
START: dict[str, Any] = {"a": 0, "k": None}


def _already_mailed(keys: list[str], index: int, emails: list[str]) -> set[str]:
    """Emails confirmed for an earlier author of the same book (they get that author's mail)."""
    if index == 0 or not emails:
        return set()
    wanted = [(key, email) for key in keys[:index] for email in emails]
    return {sub.email for sub in Subscriber.batch_get(wanted) if sub.status == CONFIRMED}


def read_chunk(
    keys: list[str], position: dict[str, Any], size: int
) -> tuple[list[tuple[str, str]], dict[str, Any] | None]:
    """Up to `size` (email, author key) pairs from `position`, and the position after them."""
    found: list[tuple[str, str]] = []
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
        found += [(email, keys[index]) for email in emails if email not in skip]
        start = rows.last_evaluated_key
        if start is None:
            index, start = index + 1, None
    return found, ({"a": index, "k": start} if index < len(keys) else None)
