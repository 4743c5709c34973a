"""Task records in DynamoDB: the state machine PENDING → STARTED → RETRY → SUCCESS | FAILURE.

Every transition is a conditional write, so a duplicate SQS delivery cannot run a task
that already succeeded or is running elsewhere under a live lease.
"""

from __future__ import annotations

import time
import uuid
from dataclasses import dataclass
from datetime import timedelta
from typing import Any

from pynamodb.exceptions import PutError, UpdateError

from chalicelib.config import get_settings
from chalicelib.models import TaskRecord, utcnow
from chalicelib.tasks.envelope import Envelope
from chalicelib.tasks.subjects import book_id_of

PENDING, STARTED, RETRY, SUCCESS, FAILURE = "PENDING", "STARTED", "RETRY", "SUCCESS", "FAILURE"
STATUSES = (PENDING, STARTED, RETRY, SUCCESS, FAILURE)
MAX_TEXT = 32 * 1024


def _is_condition_failure(exc: PutError | UpdateError) -> bool:
    return exc.cause_response_code == "ConditionalCheckFailedException"


def _expiry() -> Any:
    return utcnow() + timedelta(days=get_settings().task_ttl_days)


def _clip(text: str | None) -> str | None:
    return None if text is None else text[-MAX_TEXT:]


def new_record(env: Envelope, queue: str, owner: str | None = None) -> TaskRecord:
    """An unsaved PENDING record for an envelope."""
    return TaskRecord(
        id=env.task_id,
        name=env.task,
        queue=queue,
        status=PENDING,
        owner=owner,
        book_id=book_id_of(env.task, env.args, env.kwargs),
        args=env.args,
        kwargs=env.kwargs,
        attempts=0,
        expires_at=_expiry(),
    )


def create_pending(env: Envelope, queue: str, owner: str | None = None) -> bool:
    """Save a PENDING record; False when a record with that id exists already."""
    try:
        new_record(env, queue, owner).save(condition=TaskRecord.id.does_not_exist())
    except PutError as exc:
        if _is_condition_failure(exc):
            return False
        raise
    return True


@dataclass(frozen=True)
class Claim:
    """What `claim` found: run it (`token`), it is done, or it runs elsewhere."""

    outcome: str  # "claimed" | "done" | "busy"
    token: str | None = None
    attempts: int = 0
    retry_after: int = 0


def claim(env: Envelope, queue: str, lease_seconds: int) -> Claim:
    """Take the task for one attempt unless it succeeded or runs under a live lease."""
    now = time.time()
    token = uuid.uuid4().hex
    record = TaskRecord(env.task_id)
    condition = (
        TaskRecord.id.does_not_exist()
        | TaskRecord.status.is_in(PENDING, RETRY, FAILURE)
        | ((TaskRecord.status == STARTED) & (TaskRecord.lease_until < int(now)))
    )
    try:
        record.update(
            actions=[
                TaskRecord.name.set(TaskRecord.name | env.task),
                TaskRecord.queue.set(TaskRecord.queue | queue),
                TaskRecord.args.set(TaskRecord.args | env.args),
                TaskRecord.kwargs.set(TaskRecord.kwargs | env.kwargs),
                TaskRecord.created_at.set(TaskRecord.created_at | utcnow()),
                TaskRecord.expires_at.set(TaskRecord.expires_at | _expiry()),
                TaskRecord.status.set(STARTED),
                TaskRecord.claim_token.set(token),
                TaskRecord.lease_until.set(int(now) + lease_seconds),
                TaskRecord.started_at.set(utcnow()),
                TaskRecord.updated_at.set(utcnow()),
                TaskRecord.attempts.add(1),
            ],
            condition=condition,
        )
    except UpdateError as exc:
        if not _is_condition_failure(exc):
            raise
        current = TaskRecord.get(env.task_id, consistent_read=True)
        if current.status == SUCCESS:
            return Claim("done", attempts=int(current.attempts))
        remaining = max(1, int((current.lease_until or now) - now))
        return Claim("busy", attempts=int(current.attempts), retry_after=remaining)
    return Claim("claimed", token=token, attempts=int(record.attempts))


def _finish(task_id: str, token: str, actions: list[Any]) -> bool:
    try:
        TaskRecord(task_id).update(
            actions=[*actions, TaskRecord.updated_at.set(utcnow()), TaskRecord.lease_until.remove()],
            condition=TaskRecord.claim_token == token,
        )
    except UpdateError as exc:
        if _is_condition_failure(exc):
            return False
        raise
    return True


def mark_success(task_id: str, token: str, result: Any) -> bool:
    """Record the result; False when the lease was lost to another worker."""
    return _finish(
        task_id,
        token,
        [
            TaskRecord.status.set(SUCCESS),
            TaskRecord.result.set(result),
            TaskRecord.finished_at.set(utcnow()),
            TaskRecord.error.remove(),
            TaskRecord.traceback.remove(),
        ],
    )


def mark_retry(task_id: str, token: str, error: str, traceback: str) -> bool:
    """Record a transient failure that will be retried."""
    return _finish(
        task_id,
        token,
        [
            TaskRecord.status.set(RETRY),
            TaskRecord.error.set(_clip(error)),
            TaskRecord.traceback.set(_clip(traceback)),
        ],
    )


def mark_failure(task_id: str, token: str | None, error: str, traceback: str | None = None) -> bool:
    """Record a final failure (with no token: for a message that never ran)."""
    actions = [
        TaskRecord.status.set(FAILURE),
        TaskRecord.error.set(_clip(error)),
        TaskRecord.finished_at.set(utcnow()),
    ]
    if traceback:
        actions.append(TaskRecord.traceback.set(_clip(traceback)))
    if token is not None:
        return _finish(task_id, token, actions)
    try:
        TaskRecord(task_id).update(
            actions=[*actions, TaskRecord.updated_at.set(utcnow())],
            condition=TaskRecord.id.exists() & (TaskRecord.status != SUCCESS),
        )
    except UpdateError as exc:
        if _is_condition_failure(exc):
            return False
        raise
    return True


def _fail_unrun(task_id: str, name: str, queue: str, reason: str, condition: Any) -> bool:
    """Write FAILURE on a record that may not exist yet; False when `condition` fails."""
    try:
        TaskRecord(task_id).update(
            actions=[
                TaskRecord.name.set(TaskRecord.name | name),
                TaskRecord.queue.set(TaskRecord.queue | queue),
                TaskRecord.created_at.set(TaskRecord.created_at | utcnow()),
                TaskRecord.expires_at.set(TaskRecord.expires_at | _expiry()),
                TaskRecord.attempts.set(TaskRecord.attempts | 0),
                TaskRecord.status.set(FAILURE),
                TaskRecord.error.set(_clip(reason)),
                TaskRecord.finished_at.set(utcnow()),
                TaskRecord.updated_at.set(utcnow()),
                TaskRecord.lease_until.remove(),
            ],
            condition=condition,
        )
    except UpdateError as exc:
        if _is_condition_failure(exc):
            return False
        raise
    return True


def record_poison(task_id: str, name: str, queue: str, reason: str) -> None:
    """A FAILURE record for a message that could not even be run (unless it succeeded before)."""
    _fail_unrun(task_id, name, queue, reason, TaskRecord.id.does_not_exist() | (TaskRecord.status != SUCCESS))


def mark_dead_lettered(task_id: str, name: str, queue: str, reason: str) -> bool:
    """FAILURE for a task whose message sits in a DLQ but whose record never got there.

    Leaves alone a record that is final already or still runs under a live lease;
    keeps the last error in the reason. True when the record was changed.
    """
    now = int(time.time())
    try:
        current = TaskRecord.get(task_id, consistent_read=True)
    except TaskRecord.DoesNotExist:
        current = None
    if current is not None:
        if current.status in (SUCCESS, FAILURE):
            return False
        if current.status == STARTED and (current.lease_until or 0) >= now:
            return False
        if current.error:
            reason = f"{reason}; last error: {current.error}"
    condition = (
        TaskRecord.id.does_not_exist()
        | TaskRecord.status.is_in(PENDING, RETRY)
        | ((TaskRecord.status == STARTED) & (TaskRecord.lease_until < now))
    )
    return _fail_unrun(task_id, name, queue, reason, condition)
