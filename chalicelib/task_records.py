"""Reading task records for the API (the results backend's query side)."""

from __future__ import annotations

import re
from datetime import date, timedelta
from typing import Any

from pynamodb.exceptions import DoesNotExist

from chalicelib.config import get_settings
from chalicelib.errors import Forbidden, NotFound, ValidationFailed
from chalicelib.models import TaskRecord, utcnow
from chalicelib.pagination import decode_cursor, encode_cursor
from chalicelib.schemas import Page
from chalicelib.tasks.records import STATUSES, day_of

_DAY = re.compile(r"^\d{4}-\d{2}-\d{2}$")
_DAY_KEYS = {"created_day", "created_at", "id"}


def view(record: TaskRecord) -> dict[str, Any]:
    """JSON form of a task record."""

    def iso(value: Any) -> str | None:
        return value.isoformat() if value else None

    return {
        "id": record.id,
        "name": record.name,
        "queue": record.queue,
        "status": record.status,
        "owner": record.owner,
        "args": record.args,
        "kwargs": record.kwargs,
        "result": record.result,
        "error": record.error,
        "traceback": record.traceback,
        "attempts": int(record.attempts or 0),
        "retries": max(int(record.attempts or 0) - 1, 0),
        "created_at": iso(record.created_at),
        "started_at": iso(record.started_at),
        "finished_at": iso(record.finished_at),
        "updated_at": iso(record.updated_at),
    }


def get_record(task_id: str, principal: str, admin: bool) -> dict[str, Any]:
    """One task record, or 404; only its owner or an admin may read it."""
    try:
        record = TaskRecord.get(task_id, consistent_read=True)
    except DoesNotExist:
        raise NotFound(f"task {task_id} not found") from None
    if not admin and record.owner != principal:
        raise Forbidden(f"task {task_id} belongs to another user")
    return view(record)


def list_records(status: str | None, name: str | None, page: Page) -> dict[str, Any]:
    """A page of task records, filtered by status and/or name, newest first (by creation)."""
    if status is not None and status not in STATUSES:
        raise ValidationFailed("invalid status", [{"field": "status", "message": f"one of {', '.join(STATUSES)}"}])
    if name is not None and not 0 < len(name) <= 200:
        raise ValidationFailed("invalid name", [{"field": "name", "message": "must be 1 to 200 characters"}])
    start = decode_cursor(page.cursor)
    if status is not None:
        rows = TaskRecord.status_index.query(
            status,
            scan_index_forward=False,
            filter_condition=(TaskRecord.name == name) if name else None,
            limit=page.limit,
            last_evaluated_key=start,
        )
    elif name is not None:
        rows = TaskRecord.name_index.query(name, scan_index_forward=False, limit=page.limit, last_evaluated_key=start)
    else:
        return _newest_first(start, page.limit)
    items = [view(r) for r in rows]
    return {"items": items, "next_cursor": encode_cursor(rows.last_evaluated_key)}


def _bad_cursor() -> ValidationFailed:
    return ValidationFailed("invalid cursor", [{"field": "cursor", "message": "not a cursor of this listing"}])


def _start_day(start: dict[str, Any] | None) -> tuple[str, dict[str, Any] | None]:
    """The day bucket to begin with and the key inside it; a cursor of only a day starts at its top."""
    if start is None:
        return day_of(utcnow()), None
    day = start.get("created_day", {}).get("S")
    if not set(start) <= _DAY_KEYS or not isinstance(day, str) or not _DAY.match(day):
        raise _bad_cursor()
    try:
        parsed = date.fromisoformat(day)
    except ValueError:
        raise _bad_cursor() from None
    if parsed > (utcnow() + timedelta(days=1)).date():  # no walk from a forged future day
        raise _bad_cursor()
    if set(start) == {"created_day"}:
        return day, None
    if set(start) != _DAY_KEYS:
        raise _bad_cursor()
    return day, start


def _newest_first(start: dict[str, Any] | None, limit: int) -> dict[str, Any]:
    """Every task newest first: the day buckets of the day index, from today backwards.

    Records live TASK_TTL_DAYS, so at most that many (+2 for clock skew and TTL lag)
    buckets are read however many tasks exist; each read is a Query bounded by the page.
    """
    day, key = _start_day(start)
    oldest = (utcnow() - timedelta(days=get_settings().task_ttl_days + 2)).date()
    current = date.fromisoformat(day)
    items: list[dict[str, Any]] = []
    while len(items) < limit and current >= oldest:
        rows = TaskRecord.day_index.query(
            current.isoformat(), scan_index_forward=False, limit=limit - len(items), last_evaluated_key=key
        )
        items += [view(r) for r in rows]
        key = rows.last_evaluated_key
        if key:  # the page filled inside this day
            return {"items": items, "next_cursor": encode_cursor(key)}
        current -= timedelta(days=1)
    more = current >= oldest
    return {"items": items, "next_cursor": encode_cursor({"created_day": {"S": current.isoformat()}}) if more else None}
