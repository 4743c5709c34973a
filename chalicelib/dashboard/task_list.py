"""The dashboard's task list: newest first, by status, name, book, text and creation time, always paged.

The most selective index answers: the book index, else the name index (an exact task name),
else the status index, with the time window as the index's range condition; with none of
them, the day index merged over its shards and days. Every other filter (part of a name, the
`q` text) is a predicate of `task_search`'s bounded walk, so no request reads more than
`task_search.MAX_SCAN` records, however many exist.
"""

from __future__ import annotations

import functools
from datetime import UTC, datetime
from typing import Any

from chalicelib.dashboard import task_search
from chalicelib.ops import task_query
from chalicelib.platform.config import get_settings
from chalicelib.platform.errors import ValidationFailed
from chalicelib.platform.pagination import decode_cursor, encode_cursor, listing_scope
from chalicelib.platform.schemas import parse_page
from chalicelib.tasks import history, registry
from chalicelib.tasks.models import TaskRecord
from chalicelib.tasks.records import FAILURE, STATUSES
from chalicelib.tasks.rerun import rerun, rerunnable
from chalicelib.tasks.subjects import MAX_BOOK_ID

FILTERS = ("status", "name", "book", "q", "since", "until", "limit", "cursor")


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
    """A page of task records matching the query's filters, newest first.

    An exact task name, a status or a book is answered from its index; anything else (a time
    window alone, part of a name, `q`) by the bounded walk of `task_search`, which may answer
    fewer rows than asked for with a cursor to search on.
    """
    unknown = sorted(set(query) - set(FILTERS))
    if unknown:
        raise _invalid(unknown[0], f"unknown filter; use {', '.join(FILTERS)}")
    page = parse_page(query)
    status, name = _text(query, "status", 20), _text(query, "name", 200)
    book = _text(query, "book", MAX_BOOK_ID)
    text = _text(query, "q", 200)
    since, until = _time(query, "since"), _time(query, "until")
    if status is not None and status not in STATUSES:
        raise _invalid("status", f"one of {', '.join(STATUSES)}")
    if since and until and since > until:
        raise _invalid("since", "must not be after until")
    exact = name if name in task_names() else None
    scope = listing_scope(
        "dashboard-tasks",
        book=book,
        status=status,
        name=name,
        q=text,
        since=since.isoformat() if since else None,
        until=until.isoformat() if until else None,
    )
    start = decode_cursor(page.cursor, scope)
    window = _window(since, until)
    match = task_search.matcher(text, status, name)
    query_index: Any = None
    if book is not None:
        query_index = functools.partial(TaskRecord.book_index.query, book)
    elif exact is not None:
        query_index = functools.partial(TaskRecord.name_index.query, exact)
    elif status is not None:
        query_index = functools.partial(TaskRecord.status_index.query, status)
    if query_index is None:
        sparse = bool(text or name or status)
        found = task_search.walk_days(start, since, until, match, page.limit, sparse, by_title=bool(text))
    else:

        def one_page(limit: int, key: dict[str, Any] | None) -> Any:
            return query_index(
                range_key_condition=window, scan_index_forward=False, limit=limit, last_evaluated_key=key
            )

        found = task_search.walk_index(one_page, start, match, page.limit, by_title=bool(text))
    items = [row(record, found.titles) for record in found.records]
    return {"items": items, "next_cursor": encode_cursor(found.next_key, scope), "scanned": found.scanned}


def row(record: TaskRecord, titles: dict[str, str]) -> dict[str, Any]:
    """A record as the list shows it: the API's view plus the book's title and the runtime."""
    started, finished = record.started_at, record.finished_at
    return {
        **task_query.view(record),
        "book_title": titles.get(record.book_id or ""),
        "runtime_ms": round((finished - started).total_seconds() * 1000, 1) if started and finished else None,
    }


def task_names() -> frozenset[str]:
    """The registered task names (an exact one is answered from the name index)."""
    return frozenset(registry.registered_tasks())


def _window(since: datetime | None, until: datetime | None) -> Any:
    if since and until:
        return TaskRecord.created_at.between(since, until)
    if since:
        return TaskRecord.created_at >= since
    if until:
        return TaskRecord.created_at <= until
    return None


def attempt_history(task_id: str, attempts: int) -> list[dict[str, Any]]:
    """Every attempt kept of a task (tasks/history.py), oldest first."""

    def iso(value: datetime | None) -> str | None:
        return value.isoformat() if value else None

    return [
        {
            "number": int(a.number),
            "outcome": a.outcome,
            "started_at": iso(a.started_at),
            "finished_at": iso(a.finished_at),
            "duration_ms": a.duration_ms,
            "error": a.error,
            "traceback": a.traceback,
            "invocation": a.invocation,
        }
        for a in history.attempts(task_id, attempts)
    ]


def log_query(task_id: str) -> dict[str, str]:
    """Where the task's log lines are: a CloudWatch Logs Insights query over the workers' log
    groups (every line a task logs carries its `task_id`, Powertools' structured keys)."""
    settings = get_settings()
    query = f'fields @timestamp, level, message, attempt | filter task_id = "{task_id}" | sort @timestamp asc'
    console = (
        f"https://{settings.region}.console.aws.amazon.com/cloudwatch/home?region={settings.region}"
        "#logsV2:logs-insights"
    )
    return {
        "insights_query": query,
        "console_url": console,
        "log_groups": f"/aws/lambda/{settings.app_name}-{settings.stage}-*",
    }


MAX_RETRIES_PER_REQUEST = 25


def retry_failures(query: dict[str, str]) -> dict[str, Any]:
    """One page of "run every FAILURE in this filter again": the list's filters with
    status=FAILURE, at most MAX_RETRIES_PER_REQUEST runs, and the cursor of the next page."""
    if query.get("status") not in (None, "", FAILURE):
        raise _invalid("status", "only FAILURE tasks are run again: FAILURE or no status")
    limit = query.get("limit", str(MAX_RETRIES_PER_REQUEST))
    if not limit.isdigit() or not 1 <= int(limit) <= MAX_RETRIES_PER_REQUEST:
        raise _invalid("limit", f"1 to {MAX_RETRIES_PER_REQUEST} runs a request")
    page = list_tasks({**query, "status": FAILURE, "limit": limit})
    runs, skipped = [], []
    for item in page["items"]:
        if not rerunnable(item["status"], item["error"]) or item.get("reruns"):
            skipped.append(item["id"])  # a permanent failure, or one that was run again already
            continue
        runs.append(rerun(item["id"])["id"])
    return {"runs": runs, "skipped": skipped, "next_cursor": page["next_cursor"]}
