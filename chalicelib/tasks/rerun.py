"""Run a finished task again as a NEW run linked to the old one (the dashboard's "run again").

Flower's re-run overwrites nothing either: the old record keeps its result, error, traceback
and attempts as history, and lists its re-runs (`reruns`); the new record names the run it
repeats (`rerun_of`). Any final task can be run again (SUCCESS and REVOKED too), except one
that failed permanently (a permanent error, a poison message): the same arguments would
fail the same way, so that is a 409 and the page offers no button.

The new run is dispatched like any task (record, outbox, SQS), so it runs through the
normal executor, records and retry policy. The two links are one UpdateItem each after
the dispatch; if one fails, the new run still runs and the answer is the error (a 503).
"""

from __future__ import annotations

import uuid
from typing import Any

from pynamodb.exceptions import DoesNotExist

from chalicelib.platform.errors import Conflict, NotFound
from chalicelib.tasks import records
from chalicelib.tasks.dispatch import dispatch
from chalicelib.tasks.errors import is_permanent_reason
from chalicelib.tasks.models import TaskRecord
from chalicelib.tasks.registry import Signature, UnknownTaskError, get_task


def rerunnable(status: str, error: str | None) -> bool:
    """Whether "run again" can help: the task is final, and did not fail permanently."""
    return status in records.FINAL and not (status == records.FAILURE and is_permanent_reason(error))


def rerun(task_id: str, owner: str | None = None) -> dict[str, Any]:
    """Send a final task again with its recorded arguments, under a new id linked to the old."""
    try:
        record = TaskRecord.get(task_id, consistent_read=True)
    except DoesNotExist:
        raise NotFound(f"task {task_id} not found") from None
    if record.status not in records.FINAL:
        raise Conflict(f"task {task_id} is {record.status}; only a finished task can be run again")
    if not rerunnable(record.status, record.error):
        raise Conflict(f"task {task_id} failed permanently ({record.error}); running it again would fail the same way")
    try:
        task = get_task(record.name)
    except UnknownTaskError:
        raise Conflict(f"task {task_id} is {record.name!r}, which is not a registered task") from None
    new_id = str(uuid.uuid4())
    signature = Signature(task, tuple(record.args or []), dict(record.kwargs or {}), task_id=new_id)
    dispatch([signature], owner=record.owner if owner is None else owner)
    TaskRecord(new_id).update(actions=[TaskRecord.rerun_of.set(task_id)])
    TaskRecord(task_id).update(actions=[TaskRecord.reruns.set((TaskRecord.reruns | []).append([new_id]))])
    return {"id": new_id, "rerun_of": task_id, "name": task.name, "queue": task.queue, "status": records.PENDING}
