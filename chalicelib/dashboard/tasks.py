"""The dashboard's task list: newest first, by status, name, book and creation time, always paged.

Without any filter it is `task_query.list_records` (the API's own listing). With one,
the most selective index answers: the book index, else the status index, else the name
index, with the time window as the index's range condition and the other filters as a
filter expression, so no query reads more than one page of one partition.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from chalicelib.ops import task_query
from chalicelib.platform.errors import ValidationFailed
from chalicelib.platform.pagination import decode_cursor, encode_cursor, listing_scope
from chalicelib.platform.schemas import parse_page
from chalicelib.tasks.models import TaskRecord
from chalicelib.tasks.records import STATUSES
from chalicelib.tasks.subjects import MAX_BOOK_ID

FILTERS = ("status", "name", "book", "since", "until", "limit", "cursor")


def _invalid(field: str, message: str) -> ValidationFailed:
    return ValidationFailed(f"invalid {field}", [{"field": field, "message": message}])


def _text(query: dict[str, str], field: str, max_length: int) -> str | None:
    value = query.get(field)
    if value is None or value == "":
        return None
    if len(value) > max_length or not value.isprintable():
        raise _invalid(field, f"must be 1 to {max_length} printable characters")
    return value


def _time(query: dict[str, str], field: str) -> datetime | None:
    value = _text(query, field, 40)
    if value is None:
        return None
    try:
        moment = datetime.fromisoformat(value.replace("Z", "+00:00"))
    except ValueError:
        raise _invalid(field, "an ISO 8601 time, e.g. 2026-01-31T12:00:00Z") from None
    return moment if moment.tzinfo else moment.replace(tzinfo=UTC)  # the page sends UTC


def list_tasks(query: dict[str, str]) -> dict[str, Any]:
    """A page of task records matching the query's filters, newest first."""
    unknown = sorted(set(query) - set(FILTERS))
    if unknown:
        raise _invalid(unknown[0], f"unknown filter; use {', '.join(FILTERS)}")
    page = parse_page(query)
    status, name = _text(query, "status", 20), _text(query, "name", 200)
    book = _text(query, "book", MAX_BOOK_ID)
    since, until = _time(query, "since"), _time(query, "until")
    if status is not None and status not in STATUSES:
        raise _invalid("status", f"one of {', '.join(STATUSES)}")
    if since and until and since > until:
        raise _invalid("since", "must not be after until")
    if not (book or since or until):
        return task_query.list_records(status, name, page)
    if since or until:
        if not (book or status or name):
            raise _invalid("since" if since else "until", "a time window needs a status, name or book filter too")
    window = _window(since, until)
    index: Any
    key: str
    if book is not None:
        index, key, filters = TaskRecord.book_index, book, [(TaskRecord.status, status), (TaskRecord.name, name)]
    elif status is not None:
        index, key, filters = TaskRecord.status_index, status, [(TaskRecord.name, name)]
    else:
        index, key, filters = TaskRecord.name_index, name or "", []
    scope = listing_scope(
        "dashboard-tasks",
        book=book,
        status=status,
        name=name,
        since=since.isoformat() if since else None,
        until=until.isoformat() if until else None,
    )
    condition = None
    for attribute, value in filters:
        if value is not None:
            condition = (attribute == value) if condition is None else condition & (attribute == value)
    rows = index.query(
        key,
        range_key_condition=window,
        filter_condition=condition,
        scan_index_forward=False,
        limit=page.limit,
        last_evaluated_key=decode_cursor(page.cursor, scope),
    )
    items = [task_query.view(record) for record in rows]
    return {"items": items, "next_cursor": encode_cursor(rows.last_evaluated_key, scope)}


def _window(since: datetime | None, until: datetime | None) -> Any:
    if since and until:
        return TaskRecord.created_at.between(since, until)
    if since:
        return TaskRecord.created_at >= since
    if until:
        return TaskRecord.created_at <= until
    return None
