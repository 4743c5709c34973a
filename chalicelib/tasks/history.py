"""What each attempt of a task did, and per-minute counts per task name: Flower's history and stats.

The task record keeps only the last attempt (its state machine overwrites error and times),
so every attempt that ends also writes one attempt item, and adds to two statistics buckets
(the minute's and the hour's). All three are control items of the task table
(`control#…`, see tasks/control.py): no new table, no new grant, in no index, gone by TTL.

Cost per attempt that ends: 1 PutItem (the attempt) + 2 UpdateItem (minute and hour buckets,
sharded by task id over TASK_DAY_SHARDS so a burst does not heat one key). The buckets hold
every task name's counters as attributes (`<name>|succeeded`), so a 7-day view reads
168 hours x shards items by BatchGetItem, whatever the number of tasks. Runtimes go into
log-scale histogram slots (`<name>|h07`), from which p50/p95 and max are estimated (to within
a factor of 1.41: an exact max would take a second, conditional write per bucket).
Best effort: a failed write is logged, never fails the task.
"""

from __future__ import annotations

import math
import zlib
from contextvars import ContextVar
from datetime import UTC, datetime, timedelta
from typing import Any

from pynamodb.attributes import NumberAttribute, TTLAttribute, UnicodeAttribute, UTCDateTimeAttribute
from pynamodb.models import Model

from chalicelib.platform.aws import client
from chalicelib.platform.config import get_settings
from chalicelib.platform.dynamodb import TableMeta, utcnow
from chalicelib.platform.observability import logger
from chalicelib.tasks.control import PREFIX

OUTCOMES = ("succeeded", "failed", "retried", "revoked")
SLOTS = 24  # runtime histogram: slot k holds runtimes up to 2**(k/2) ms (1 ms … ~4 s … ~68 min at 24)
MAX_ATTEMPT_TEXT = 16 * 1024

_INVOCATION: ContextVar[tuple[str | None, str | None, str | None]] = ContextVar(
    "invocation", default=(None, None, None)
)


def set_invocation(request_id: str | None, log_group: str | None = None, log_stream: str | None = None) -> None:
    """The Lambda request id of the invocation now running, and where its log lines go (the
    context's log group and stream): the worker sets them per batch, the dashboard reads the lines."""
    _INVOCATION.set((request_id, log_group or None, log_stream or None))


def invocation() -> str | None:
    return _INVOCATION.get()[0]


class TaskAttempt(Model):
    """One attempt of one task (`control#attempt#<task id>#<n>`)."""

    class Meta(TableMeta):
        table_setting = "tasks_table"

    id = UnicodeAttribute(hash_key=True)
    task_id = UnicodeAttribute()
    number = NumberAttribute()
    outcome = UnicodeAttribute()
    started_at = UTCDateTimeAttribute(null=True)
    finished_at = UTCDateTimeAttribute(null=True)
    duration_ms = NumberAttribute(null=True)
    error = UnicodeAttribute(null=True)
    traceback = UnicodeAttribute(null=True)
    invocation = UnicodeAttribute(null=True)
    log_group = UnicodeAttribute(null=True)
    log_stream = UnicodeAttribute(null=True)
    expires_at = TTLAttribute(null=True)


def attempt_id(task_id: str, number: int) -> str:
    return f"{PREFIX}attempt#{task_id}#{number}"


def record_attempt(
    task_id: str,
    name: str,
    number: int,
    outcome: str,
    duration_ms: float,
    error: str | None = None,
    trace: str | None = None,
) -> None:
    """Keep what this attempt did, and count it in the statistics (best effort)."""
    now = utcnow()
    request_id, group, stream = _INVOCATION.get()
    try:
        TaskAttempt(
            attempt_id(task_id, number),
            task_id=task_id,
            number=number,
            outcome=outcome,
            started_at=now - timedelta(milliseconds=duration_ms),
            finished_at=now,
            duration_ms=round(duration_ms, 1),
            error=(error or "")[:MAX_ATTEMPT_TEXT] or None,
            traceback=(trace or "")[:MAX_ATTEMPT_TEXT] or None,
            invocation=request_id,
            log_group=group,
            log_stream=stream,
            expires_at=now + timedelta(days=get_settings().task_ttl_days),
        ).save()
        count(task_id, name, outcome, duration_ms, now)
    except Exception as exc:  # noqa: BLE001 - history is for people; the task's own record is what counts
        logger.warning("could not record the attempt's history", extra={"error": str(exc)})


def attempts(task_id: str, count_: int) -> list[TaskAttempt]:
    """The attempts kept of a task, oldest first (one BatchGetItem per 100)."""
    keys = [attempt_id(task_id, n) for n in range(1, max(0, min(count_, 1000)) + 1)]
    found = list(TaskAttempt.batch_get(keys)) if keys else []
    return sorted(found, key=lambda a: int(a.number))


def attempt(task_id: str, number: int) -> TaskAttempt | None:
    """One kept attempt (one GetItem), or None."""
    try:
        return TaskAttempt.get(attempt_id(task_id, number))
    except TaskAttempt.DoesNotExist:
        return None


def slot(duration_ms: float) -> int:
    """The histogram slot of a runtime: log scale, two slots per doubling."""
    return min(SLOTS - 1, max(0, math.ceil(2 * math.log2(max(duration_ms, 1.0)))))


def slot_upper_ms(index: int) -> float:
    return float(2 ** (index / 2))


def bucket_ids(kind: str, start: datetime, end: datetime) -> list[str]:
    """The ids of the `kind` ("m" minute, "h" hour) buckets from `start` to `end`, every shard."""
    step = timedelta(minutes=1) if kind == "m" else timedelta(hours=1)
    fmt = "%Y-%m-%dT%H:%M" if kind == "m" else "%Y-%m-%dT%H"
    moment = start.replace(second=0, microsecond=0) if kind == "m" else start.replace(minute=0, second=0, microsecond=0)
    ids = []
    while moment <= end:
        ids += [f"{PREFIX}stats#{kind}#{moment.strftime(fmt)}#{s}" for s in range(_shards())]
        moment += step
    return ids


def _shards() -> int:
    return max(1, get_settings().task_day_shards)


def count(task_id: str, name: str, outcome: str, duration_ms: float, now: datetime) -> None:
    """ADD this attempt to the minute and the hour bucket (one UpdateItem each)."""
    shard = zlib.crc32(task_id.encode()) % _shards()
    ttl = int((now + timedelta(days=8)).timestamp())
    names = {"#p": f"{name}|processed", "#o": f"{name}|{outcome}", "#h": f"{name}|h{slot(duration_ms):02d}"}
    names |= {"#s": f"{name}|runtime_sum", "#t": "expires_at"}
    values = {":one": {"N": "1"}, ":d": {"N": f"{duration_ms:.1f}"}, ":ttl": {"N": str(ttl)}}
    for kind, fmt in (("m", "%Y-%m-%dT%H:%M"), ("h", "%Y-%m-%dT%H")):
        key = {"id": {"S": f"{PREFIX}stats#{kind}#{now.astimezone(UTC).strftime(fmt)}#{shard}"}}
        client("dynamodb").update_item(
            TableName=get_settings().tasks_table,
            Key=key,
            UpdateExpression="ADD #p :one, #o :one, #h :one, #s :d SET #t = :ttl",
            ExpressionAttributeNames=names,
            ExpressionAttributeValues=values,
        )


def read_buckets(ids: list[str]) -> list[dict[str, Any]]:
    """The buckets that exist among `ids`, as plain dicts of numbers (BatchGetItem by 100)."""
    dynamo = client("dynamodb")
    found: list[dict[str, Any]] = []
    for i in range(0, len(ids), 100):
        request: dict[str, Any] = {get_settings().tasks_table: {"Keys": [{"id": {"S": k}} for k in ids[i : i + 100]]}}
        for _ in range(5):  # unprocessed keys come back under throttling
            answer = dynamo.batch_get_item(RequestItems=request)
            for item in answer.get("Responses", {}).get(get_settings().tasks_table, []):
                found.append({k: _plain(v) for k, v in item.items()})
            request = answer.get("UnprocessedKeys") or {}
            if not request:
                break
    return found


def _plain(value: dict[str, Any]) -> Any:
    """A DynamoDB attribute value as Python: numbers as float, maps of numbers as dicts."""
    if "N" in value:
        return float(value["N"])
    if "M" in value:
        return {k: _plain(v) for k, v in value["M"].items()}
    return value.get("S")
