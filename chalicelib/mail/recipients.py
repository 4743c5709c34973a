"""Confirmed subscribers of a book's authors, read one bounded chunk at a time.

A position is `{"a": author index, "k": DynamoDB key to start after or None}`; None means
done. A segment is the key range of one author's partition from a position to an `until`
email (inclusive; None: the partition's end), found by `split`. Reading never loads more
than one read's worth (a few hundred rows): a popular author's million subscribers are
walked in key order, one Query per read (plus more only when unconfirmed rows are filtered
out). Someone subscribed to two authors of the book is mailed once, for the first of them.
"""

from __future__ import annotations

from typing import Any, NamedTuple, TypedDict

from pynamodb.constants import COUNT

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


def read(
    keys: list[str], position: dict[str, Any], size: int, until: Segment | None = None
) -> tuple[list[Recipient], dict[str, Any] | None]:
    """Up to `size` recipients from `position` (within the segment `until`, if given), and the position after them."""
    found: list[Recipient] = []
    index, start = int(position["a"]), position.get("k")
    last = len(keys) if until is None else int(until["a"]) + 1  # a segment lies in one author's partition
    while index < last and len(found) < size:
        want = size - len(found)
        bound = until and until.get("email")
        rows = Subscriber.query(
            keys[index],
            range_key_condition=Subscriber.email <= bound if bound else None,
            filter_condition=Subscriber.status == CONFIRMED,
            limit=want,
            page_size=want,
            last_evaluated_key=start,
            attributes_to_get=["author_key", "email"],  # the key is all a mail needs: a smaller answer
        )
        emails = [row.email for row in rows]
        skip = _already_mailed(keys, index, emails)
        found += [Recipient(email, keys[index], index) for email in emails if email not in skip]
        start = rows.last_evaluated_key
        if start is None:
            index, start = index + 1, None
    return found, ({"a": index, "k": start} if index < last else None)


class Segment(TypedDict):
    """The end of a key range: author index and last email in it (None: to the partition's end)."""

    a: int
    email: str | None


def split(keys: list[str], position: dict[str, Any], size: int) -> tuple[Segment, dict[str, Any] | None]:
    """The segment of up to `size` subscriber rows from `position`, and the position after it.

    One Query with `Select=COUNT` and `Limit=size`: DynamoDB reads (and bills) the rows but
    returns only where it stopped, so dealing out a million rows is ~200 small answers.
    """
    index, start = int(position["a"]), position.get("k")
    answer = Subscriber._get_connection().query(keys[index], select=COUNT, limit=size, exclusive_start_key=start)
    stop = answer.get("LastEvaluatedKey")
    if stop is None:  # the partition ends in this segment
        after = {"a": index + 1, "k": None} if index + 1 < len(keys) else None
        return Segment(a=index, email=None), after
    return Segment(a=index, email=str(stop["email"]["S"])), {"a": index, "k": stop}


def after(recipient: Recipient) -> dict[str, Any]:
    """The position just after one recipient (what DynamoDB's LastEvaluatedKey would be there)."""
    return {
        "a": recipient.author_index,
        "k": {"author_key": {"S": recipient.author_key}, "email": {"S": recipient.email}},
    }
