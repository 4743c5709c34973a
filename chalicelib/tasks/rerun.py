"""Run one FAILURE task again under the same id (the dashboard's "re-run" button).

Not a task that failed permanently (a permanent error, a poison message): the same
arguments would fail the same way, so that is a 409 and the page offers no button.

`dispatch()` never sends a task whose record exists (that is what makes dispatch
idempotent), so a re-run first moves the record FAILURE → PENDING with a conditional
write (two admins clicking at once send it once), then sends the same envelope. The
worker's claim accepts PENDING, so the task runs through the normal executor, records
and retry policy; attempts count again from 1 because SQS's receive count does.
"""

from __future__ import annotations

from typing import Any

from pynamodb.exceptions import DoesNotExist

from chalicelib.platform.aws import client
from chalicelib.platform.config import get_settings
from chalicelib.platform.errors import ApiError, NotFound
from chalicelib.platform.sqs import queue_url
from chalicelib.tasks import records
from chalicelib.tasks.envelope import Envelope
from chalicelib.tasks.errors import is_permanent_reason
from chalicelib.tasks.models import TaskRecord
from chalicelib.tasks.registry import UnknownTaskError, get_task


class Conflict(ApiError):
    status, code = 409, "Conflict"


def rerun(task_id: str) -> dict[str, Any]:
    """Send a FAILURE task again with its recorded arguments; 409 unless it is FAILURE."""
    try:
        record = TaskRecord.get(task_id, consistent_read=True)
    except DoesNotExist:
        raise NotFound(f"task {task_id} not found") from None
    if record.status != records.FAILURE:
        raise Conflict(f"task {task_id} is {record.status}; only a FAILURE task can be run again")
    if is_permanent_reason(record.error):
        raise Conflict(f"task {task_id} failed permanently ({record.error}); running it again would fail the same way")
    try:
        task = get_task(record.name)
    except UnknownTaskError:
        raise Conflict(f"task {task_id} is {record.name!r}, which is not a registered task") from None
    env = Envelope(task_id=task_id, task=task.name, args=list(record.args or []), kwargs=dict(record.kwargs or {}))
    body = env.encode()
    if not records.requeue(task_id, task.queue):
        raise Conflict(f"task {task_id} changed meanwhile; reload")
    queue = get_settings().queues[task.queue]
    try:
        client("sqs").send_message(QueueUrl=queue_url(queue.name), MessageBody=body)
    except Exception as exc:
        # Nothing half-done: the record says why the re-run did not happen.
        records.mark_failure(task_id, None, f"re-run could not be enqueued: {exc}")
        raise
    return {"id": task_id, "name": task.name, "queue": task.queue, "status": records.PENDING}
