"""Reading task records for the API and the dashboard (the results backend's query side).

DynamoDB-specific on purpose: the listings page through its indexes; the state machine
(`tasks/records.py`) never reads through here."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, datetime, timedelta
from typing import Any

from pynamodb.exceptions import DoesNotExist

from chalicelib.mail import fanout
from chalicelib.ops import task_answers
from chalicelib.platform.config import get_settings
from chalicelib.platform.dynamodb import utcnow
from chalicelib.platform.errors import Conflict, Forbidden, NotFound, ValidationFailed
from chalicelib.platform.pagination import decode_cursor, encode_cursor, listing_scope
from chalicelib.platform.schemas import Page
from chalicelib.tasks import revocation
from chalicelib.tasks.control import is_control_id
from chalicelib.tasks.models import TaskRecord
from chalicelib.tasks.records import STATUSES
from chalicelib.tasks.result import wait_for
from chalicelib.tasks.states import FINAL_STATUSES

MAX_WAIT_SECONDS = 20  # API Gateway answers within 29 s; the API function's timeout is 29 s

_CURSOR_KEYS = {"created_day", "created_at", "id"}
#: A status listing filtered by name reads the status index this many records a call, and at most
#: FILTERED_READS calls a request; then it answers with what matched and a cursor where it stopped.
#: PynamoDB's own `limit` would read on (2 records a call for `limit=2`) until enough matched:
#: through the whole status once the name is rare, past API Gateway's 29 s.
FILTERED_PAGE_SIZE = 100
FILTERED_READS = 10


def view(record: TaskRecord) -> task_answers.TaskRecord:
    """JSON form of a task record."""

    def iso(value: Any) -> str | None:
        return value.isoformat() if value else None

    return {
        "id": record.id,
        "name": record.name,
        "queue": record.queue,
        "status": record.status,
        "owner": record.owner,
        "book_id": record.book_id,
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
        "invocation": record.invocation,
        "parent_id": record.parent_id,
        "children": [str(child) for child in record.children or []],
        "children_sent": int(record.children_sent or 0),
        "rerun_of": record.rerun_of,
        "reruns": [str(run) for run in record.reruns or []],
    }


def wait_seconds(raw: str | None) -> int:
    """The `?wait=` of `GET /tasks/{id}`: whole seconds, 0 to MAX_WAIT_SECONDS (absent: 0)."""
    if raw is None:
        return 0
    if not (raw.isascii() and raw.isdigit() and len(raw) <= 3 and int(raw) <= MAX_WAIT_SECONDS):
        message = f"a whole number of seconds from 0 to {MAX_WAIT_SECONDS}"
        raise ValidationFailed("invalid wait", [{"field": "wait", "message": message}])
    return int(raw)


def get_record(task_id: str, principal: str, admin: bool, wait: str | None = None) -> task_answers.TaskRecord:
    """One task record, or 404; only its owner or an admin may read it.

    With `wait` (seconds), answers as soon as the record is final or when the wait is over,
    with the record as it is then (`tasks/result.py`: bounded polling, ~17 reads for 20 s).
    """
    seconds = wait_seconds(wait)
    if is_control_id(task_id):  # the framework's own items (rate schedules, leases) are no tasks
        raise NotFound(f"task {task_id} not found")
    try:
        record = TaskRecord.get(task_id, consistent_read=True)
    except DoesNotExist:
        raise NotFound(f"task {task_id} not found") from None
    if not admin and record.owner != principal:
        raise Forbidden(f"task {task_id} belongs to another user")  # before any wait: nobody else holds it
    if seconds and record.status not in FINAL_STATUSES:
        record = wait_for(task_id, seconds, first=record) or record
    body = view(record)
    if record.name in fanout.FANOUT_TASKS and record.args:  # the book's mail counts, across all its pages
        body["mail"] = fanout.progress(str(record.args[0]))
    return body


def revoke(task_id: str, principal: str, admin: bool) -> task_answers.TaskRecord:
    """Revoke a task of `principal` (any task for an admin): 404 for others, 409 when final."""
    try:
        record = TaskRecord.get(task_id, consistent_read=True)
    except DoesNotExist:
        record = None
    if record is None or not record.name or (not admin and record.owner != principal):
        raise NotFound(f"task {task_id} not found")
    done = revocation.revoke(task_id)
    if not done.revoked:
        raise Conflict(
            f"task {task_id} is {done.status} already; only PENDING, RETRY or STARTED tasks can be revoked",
            [{"field": "status", "message": f"is {done.status}"}],
        )
    return view(TaskRecord.get(task_id, consistent_read=True))


def list_records(status: str | None, name: str | None, page: Page) -> task_answers.TaskPage:
    """A page of task records, filtered by status and/or name, newest first (by creation)."""
    if status is not None and status not in STATUSES:
        raise ValidationFailed("invalid status", [{"field": "status", "message": f"one of {', '.join(STATUSES)}"}])
    if name is not None and not 0 < len(name) <= 200:
        raise ValidationFailed("invalid name", [{"field": "name", "message": "must be 1 to 200 characters"}])
    scope = listing_scope("tasks", status=status, name=name)
    start = decode_cursor(page.cursor, scope)
    if status is not None and name is not None:
        items, last = _filtered_by_name(status, name, page.limit, start)
        return {"items": items, "next_cursor": encode_cursor(last, scope)}
    if status is not None:
        rows = TaskRecord.status_index.query(
            status, scan_index_forward=False, limit=page.limit, last_evaluated_key=start
        )
    elif name is not None:
        rows = TaskRecord.name_index.query(name, scan_index_forward=False, limit=page.limit, last_evaluated_key=start)
    else:
        return _newest_first(start, page.limit, scope)
    items = [view(r) for r in rows]
    return {"items": items, "next_cursor": encode_cursor(rows.last_evaluated_key, scope)}


def _filtered_by_name(
    status: str, name: str, limit: int, start: dict[str, Any] | None
) -> tuple[list[task_answers.TaskRecord], dict[str, Any] | None]:
    """Up to `limit` records of `status` named `name`, newest first, reading a bounded number of
    index pages; the key to go on from (None at the end)."""
    pages = TaskRecord.status_index.query(
        status,
        scan_index_forward=False,
        filter_condition=TaskRecord.name == name,
        page_size=FILTERED_PAGE_SIZE,
        last_evaluated_key=start,
    ).page_iter
    items: list[task_answers.TaskRecord] = []
    for _ in range(FILTERED_READS):
        try:
            raw_page = next(pages)
        except StopIteration:
            return items, None
        for raw in raw_page.get("Items", []):
            items.append(view(TaskRecord.from_raw_data(raw)))
            if len(items) == limit:
                return items, {key: raw[key] for key in pages.key_names}
        if pages.last_evaluated_key is None:
            return items, None
    return items, pages.last_evaluated_key


def _bad_cursor() -> ValidationFailed:
    return ValidationFailed("invalid cursor", [{"field": "cursor", "message": "not a cursor of this listing"}])


@dataclass(frozen=True)
class _Position:
    """Where a page of the unfiltered listing starts: a day, and the last record shown in it."""

    day: date
    created_at: datetime | None = None
    task_id: str | None = None

    def cursor(self, scope: str) -> str | None:
        key = {"created_day": {"S": self.day.isoformat()}}
        if self.created_at is not None and self.task_id is not None:
            key |= {"created_at": {"S": self.created_at.isoformat()}, "id": {"S": self.task_id}}
        return encode_cursor(key, scope)


def _text(start: dict[str, Any], name: str) -> str:
    value = start.get(name, {}).get("S")
    if not isinstance(value, str):
        raise _bad_cursor()
    return value


def _position(start: dict[str, Any] | None) -> _Position:
    """The position a cursor names; a cursor of only a day starts at its top."""
    if start is None:
        return _Position(utcnow().date())
    if set(start) not in ({"created_day"}, _CURSOR_KEYS):
        raise _bad_cursor()
    try:
        day = date.fromisoformat(_text(start, "created_day"))
        created_at = datetime.fromisoformat(_text(start, "created_at")) if "created_at" in start else None
    except ValueError:
        raise _bad_cursor() from None
    if day > (utcnow() + timedelta(days=1)).date():  # no walk from a forged future day
        raise _bad_cursor()
    if created_at is None:
        return _Position(day)
    if created_at.tzinfo is None:
        raise _bad_cursor()
    return _Position(day, created_at, _text(start, "id"))


def _after(record: TaskRecord, position: _Position) -> bool:
    """True when `record` comes after `position` in the order (created_at, id) descending."""
    if position.created_at is None:
        return True
    return (record.created_at, record.id) < (position.created_at, position.task_id or "")


def _day_page(position: _Position, need: int) -> list[TaskRecord]:
    """Up to `need` records of one day after `position`, merged from every shard of the day."""
    candidates: list[TaskRecord] = []
    condition = TaskRecord.created_at <= position.created_at if position.created_at is not None else None
    for shard in range(max(1, get_settings().task_day_shards)):
        rows = TaskRecord.day_index.query(
            f"{position.day.isoformat()}#{shard}",
            range_key_condition=condition,
            scan_index_forward=False,
            page_size=need + 1,
        )
        taken, boundary = 0, None
        for record in rows:  # lazily, page by page, until `need` records of this shard qualify
            if boundary is not None and record.created_at < boundary:
                break  # ties with the last one taken are read on: the index orders ties arbitrarily
            if _after(record, position):
                candidates.append(record)
                taken += 1
                if taken == need:
                    boundary = record.created_at
    candidates.sort(key=lambda r: (r.created_at, r.id), reverse=True)
    return candidates[:need]


def _newest_first(start: dict[str, Any] | None, limit: int, scope: str) -> task_answers.TaskPage:
    """Every task newest first: the day buckets of the index, from today backwards.

    Records live TASK_TTL_DAYS, so at most that many (+2 for clock skew and TTL lag) days
    are read however many tasks exist; each read is one Query per shard, bounded by the page.
    """
    position = _position(start)
    oldest = (utcnow() - timedelta(days=get_settings().task_ttl_days + 2)).date()
    items: list[task_answers.TaskRecord] = []
    while position.day >= oldest:
        need = limit - len(items)
        records = _day_page(position, need)
        items += [view(r) for r in records]
        if len(records) == need:  # the page is full inside this day
            last = records[-1]
            return {"items": items, "next_cursor": _Position(position.day, last.created_at, last.id).cursor(scope)}
        position = _Position(position.day - timedelta(days=1))
    return {"items": items, "next_cursor": None}
