"""Reading task records for the API (the results backend's query side)."""

from __future__ import annotations

from typing import Any

from pynamodb.exceptions import DoesNotExist

from chalicelib.errors import Forbidden, NotFound, ValidationFailed
from chalicelib.models import TaskRecord
from chalicelib.pagination import decode_cursor, encode_cursor, listing_scope
from chalicelib.schemas import Page
from chalicelib.tasks.records import STATUSES


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
    """A page of task records, filtered by status and/or name, newest first."""
    if status is not None and status not in STATUSES:
        raise ValidationFailed("invalid status", [{"field": "status", "message": f"one of {', '.join(STATUSES)}"}])
    if name is not None and not 0 < len(name) <= 200:
        raise ValidationFailed("invalid name", [{"field": "name", "message": "must be 1 to 200 characters"}])
    scope = listing_scope("tasks", status=status, name=name)
    start = decode_cursor(page.cursor, scope)
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
        rows = TaskRecord.scan(limit=page.limit, last_evaluated_key=start)
    items = [view(r) for r in rows]
    return {"items": items, "next_cursor": encode_cursor(rows.last_evaluated_key, scope)}
