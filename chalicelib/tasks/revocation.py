"""Revoking tasks (Celery's `app.control.revoke`), and the check a long task makes for it.

SQS cannot delete a message it has not delivered, so a revoke is a mark on the record: one
conditional write to REVOKED. The message is dropped when it arrives, because a claim never
takes a REVOKED record; a running task is not killed but may ask `revoked()` between steps
(the mail fan-out does, between chunks); whatever it returns afterwards is not kept.
"""

from __future__ import annotations

from dataclasses import dataclass

from pynamodb.exceptions import DoesNotExist

from chalicelib.platform.observability import emit, logger
from chalicelib.tasks import current, records
from chalicelib.tasks.envelope import Envelope
from chalicelib.tasks.failures import task_failed
from chalicelib.tasks.hooks import Final, run_final_hooks
from chalicelib.tasks.models import TaskRecord
from chalicelib.tasks.registry import FailureInfo, UnknownTaskError, get_task


class TaskRevokedError(Exception):
    """What a revoked task's `on_failure` hook is given as its exception (Celery's `TaskRevokedError`)."""


@dataclass(frozen=True)
class Revocation:
    """What `revoke` did: `revoked` now, or not because the record is `status` ("missing": none)."""

    revoked: bool
    status: str | None = None


def revoke(task_id: str) -> Revocation:
    """Revoke a PENDING, RETRY, delayed or running task: its record becomes REVOKED (final).

    Unlike Celery, there is no `terminate`: a running task stops where it checks `revoked()`.
    A task that is final already is left alone (`revoked=False` with its status).
    """
    found = records.revoke(task_id)
    if found is not None:
        return Revocation(False, found)
    logger.info("task revoked", extra={"task_id": task_id})
    emit("TasksRevoked")
    _tell(task_id)
    return Revocation(True, records.REVOKED)


def _tell(task_id: str) -> None:
    """Tell the revoked task's callbacks and its `on_failure` hook now, not when its message comes.

    Best effort: the message's arrival tells the callbacks again (they are idempotent).
    """
    try:
        record = TaskRecord.get(task_id, consistent_read=True)
        env = Envelope(task_id, record.name, list(record.args or []), dict(record.kwargs or {}), links=record.links)
        run_final_hooks(env, Final(records.REVOKED, error="revoked"))
        # A revoked task ends like a failed one for its `on_failure` hook (a cover is marked failed, not left pending).
        task_failed(
            get_task(record.name), task_id, env.args, env.kwargs, TaskRevokedError("revoked"), FailureInfo("revoked")
        )
    except (DoesNotExist, UnknownTaskError):
        return
    except Exception as exc:  # noqa: BLE001 - the revoke stands; the message's arrival tells the callbacks
        logger.warning("could not tell a revoked task's callbacks yet", extra={"task_id": task_id, "error": str(exc)})


def revoked(task_id: str | None = None) -> bool:
    """True when the task (by default the one running here) was revoked: one consistent GetItem."""
    ident = task_id or current.task_id()
    return ident is not None and records.status_of(ident) == records.REVOKED
