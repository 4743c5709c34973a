"""Searching task records without an index per question: a bounded walk with a continuation cursor.

A substring of a name, args, an error text, an address or a book title has no DynamoDB index.
Rather than a second store (a token index written with every record, OpenSearch), the search
reads the newest records in order (the day index merged over its shards, or one partition of
the status/name/book index) and keeps those that match, and stops after `MAX_SCAN` records
read per request. A page can so hold fewer matches than asked for, with a cursor where the
walk stopped; the page offers "search on". Reads per request are bounded (`MAX_SCAN` items at
most, plus one BatchGetItem of book titles), whatever the table's size: at 1,000,000 records a
search of the last hour or day answers as fast as at 1,000; one over all 14 days is paged.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from typing import Any

from chalicelib.books.models import Book
from chalicelib.platform.config import get_settings
from chalicelib.platform.dynamodb import utcnow
from chalicelib.platform.errors import ValidationFailed
from chalicelib.tasks.models import TaskRecord

MAX_SCAN = 600  # records read per request at most (~600 x 1.5 KB: ~110 eventually consistent RCUs)
_CURSOR_KEYS = {"created_day", "created_at", "id"}

Match = Callable[[TaskRecord, str | None], bool]


@dataclass(frozen=True)
class Found:
    """A page of matches, the book titles they name, where to go on, and how much was read."""

    records: list[TaskRecord]
    titles: dict[str, str]
    next_key: dict[str, Any] | None
    scanned: int


def matcher(text: str | None, status: str | None, name: str | None) -> Match:
    """The predicate of a search: every given filter holds; `text` is a case-blind substring of
    the name, args, kwargs, error, result or the book's title (an address is in a mail task's args)."""
    needle = (text or "").casefold()
    part = (name or "").casefold()

    def match(record: TaskRecord, title: str | None) -> bool:
        if status and record.status != status:
            return False
        if part and part not in (record.name or "").casefold():
            return False
        if not needle:
            return True
        haystack = (
            record.name,
            record.error or "",
            json.dumps(record.args, ensure_ascii=False),
            json.dumps(record.kwargs, ensure_ascii=False),
            json.dumps(record.result, ensure_ascii=False) if record.result is not None else "",
            title or "",
        )
        return any(needle in field.casefold() for field in haystack)

    return match


def titles(book_ids: Iterable[str | None]) -> dict[str, str]:
    """Titles of the named books: one BatchGetItem per 100 ids (PynamoDB splits and retries)."""
    wanted = sorted({b for b in book_ids if b})
    if not wanted:
        return {}
    return {book.id: book.title for book in Book.batch_get(wanted, attributes_to_get=["id", "title"])}


def _bad_cursor() -> ValidationFailed:
    return ValidationFailed("invalid cursor", [{"field": "cursor", "message": "not a cursor of this listing"}])


@dataclass(frozen=True)
class Position:
    """Where the day walk stands: a day, and the last record examined in it (None: its top)."""

    day: date
    created_at: datetime | None = None
    task_id: str | None = None

    def key(self) -> dict[str, Any]:
        key: dict[str, Any] = {"created_day": {"S": self.day.isoformat()}}
        if self.created_at is not None and self.task_id is not None:
            key |= {"created_at": {"S": self.created_at.isoformat()}, "id": {"S": self.task_id}}
        return key

    @staticmethod
    def of(key: dict[str, Any] | None, until: datetime | None) -> Position:
        if key is None:
            top = until or utcnow()
            return Position(top.date(), until, "\uffff" if until else None)
        if set(key) not in ({"created_day"}, _CURSOR_KEYS):
            raise _bad_cursor()
        try:
            day = date.fromisoformat(str(key["created_day"]["S"]))
            if "created_at" not in key:
                return Position(day)
            moment = datetime.fromisoformat(str(key["created_at"]["S"]))
            return Position(day, moment if moment.tzinfo else moment.replace(tzinfo=UTC), str(key["id"]["S"]))
        except (KeyError, TypeError, ValueError):
            raise _bad_cursor() from None


def _order(record: TaskRecord) -> tuple[datetime, str]:
    return (record.created_at, record.id)


def walk_days(
    start: dict[str, Any] | None,
    since: datetime | None,
    until: datetime | None,
    match: Match,
    limit: int,
    sparse: bool = True,
    by_title: bool = True,
) -> Found:
    """Matches newest first over the day index (every shard of each day merged), from `until`
    (or now) back to `since` (or the records' lifetime), reading at most MAX_SCAN records.

    Without a filter (`sparse` False: every record matches) each shard is asked for one page
    only (limit + 1): the live list's refresh reads shards x 26 records; with one, 200 a shard.
    Book titles are read for every record examined only when the match needs them
    (`by_title`, the `q` text); else for the page's rows alone (half the live list's reads).
    """
    position = Position.of(start, until)
    oldest = (utcnow() - timedelta(days=get_settings().task_ttl_days + 2)).date()
    if since is not None:
        oldest = max(oldest, since.date())
    if position.day > (utcnow() + timedelta(days=1)).date():
        raise _bad_cursor()
    found: list[TaskRecord] = []
    names: dict[str, str] = {}
    scanned = 0
    while position.day >= oldest:
        budget = MAX_SCAN - scanned
        if budget <= 0:
            return Found(found, names, position.key(), scanned)
        shards = max(1, get_settings().task_day_shards)  # every shard answers up to per_shard records
        per_shard = max(1, min(budget // shards, 200 if sparse else limit + 1))
        chunk, complete, read = _day_chunk(position, since, per_shard)
        scanned += read
        if by_title:
            names |= titles(r.book_id for r in chunk if r.book_id not in names)
        for record in chunk:
            position = Position(position.day, record.created_at, record.id)
            if match(record, names.get(record.book_id or "")):
                found.append(record)
                if len(found) == limit:
                    return _found(found, names, position.key(), scanned, by_title)
        if complete:
            position = Position(position.day - timedelta(days=1))
    return _found(found, names, None, scanned, by_title)


def _found(
    records: list[TaskRecord], names: dict[str, str], key: dict[str, Any] | None, scanned: int, by_title: bool
) -> Found:
    """The page, with the titles of its rows (read now unless the walk read them already)."""
    return Found(records, names if by_title else titles(r.book_id for r in records), key, scanned)


def _day_chunk(position: Position, since: datetime | None, per_shard: int) -> tuple[list[TaskRecord], bool, int]:
    """The next records of one day after `position`, in order, that no unread record precedes.

    Each shard answers at most `per_shard` records; when a shard was cut short, only records at
    or above its last one are safe to hand out (it may hold unread ones just below). True with
    them when the day is read to its end, and the number of records read.
    """
    condition: Any
    if position.created_at is not None and since is not None:
        condition = TaskRecord.created_at.between(since, position.created_at)
    elif position.created_at is not None:
        condition = TaskRecord.created_at <= position.created_at
    elif since is not None:
        condition = TaskRecord.created_at >= since
    else:
        condition = None
    merged: list[TaskRecord] = []
    floor: tuple[datetime, str] | None = None
    read = 0
    for shard in range(max(1, get_settings().task_day_shards)):
        rows = list(
            TaskRecord.day_index.query(
                f"{position.day.isoformat()}#{shard}",
                range_key_condition=condition,
                scan_index_forward=False,
                limit=per_shard,
            )
        )
        read += len(rows)
        fresh = [r for r in rows if _after(r, position)]
        merged += fresh
        if len(rows) == per_shard and rows:
            last = min(_order(r) for r in rows)
            floor = last if floor is None else max(floor, last)
    merged.sort(key=_order, reverse=True)
    if floor is None:
        return merged, True, read
    return [r for r in merged if _order(r) >= floor], False, read


def _after(record: TaskRecord, position: Position) -> bool:
    if position.created_at is None:
        return True
    return _order(record) < (position.created_at, position.task_id or "")


def walk_index(
    query: Callable[[int, dict[str, Any] | None], Any],
    start: dict[str, Any] | None,
    match: Match,
    limit: int,
    by_title: bool = True,
) -> Found:
    """Matches from one partition of a status, name or book index, page by page from `start`.

    Each Query asks for only as many records as matches are still wanted, so the last page's
    LastEvaluatedKey is exactly where the next request goes on.
    """
    found: list[TaskRecord] = []
    names: dict[str, str] = {}
    scanned, key = 0, start
    while len(found) < limit and scanned < MAX_SCAN:
        rows = query(min(limit - len(found), MAX_SCAN - scanned), key)
        page = list(rows)
        scanned += len(page)
        if by_title:
            names |= titles(r.book_id for r in page if r.book_id not in names)
        found += [r for r in page if match(r, names.get(r.book_id or ""))]
        key = rows.last_evaluated_key
        if key is None:
            break
    return _found(found, names, key, scanned, by_title)
