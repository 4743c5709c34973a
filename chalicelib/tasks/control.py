"""Revoking tasks (Celery's `app.control.revoke`), and the check a long task makes for it.

SQS cannot delete a message it has not delivered, so a revoke is a mark on the record: one
conditional write to REVOKED. The message is dropped when it arrives, because a claim never
takes a REVOKED record; a running task is not killed but may ask `revoked()` between steps
(the mail fan-out does, between chunks); whatever it returns afterwards is not kept.
"""

from __future__ import annotations

from dataclasses import dataclass

from chalicelib.platform.observability import emit, logger
from chalicelib.tasks import current, records


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
    return Revocation(True, records.REVOKED)


def revoked(task_id: str | None = None) -> bool:
    """True when the task (by default the one running here) was revoked: one consistent GetItem."""
    ident = task_id or current.task_id()
    return ident is not None and records.status_of(ident) == records.REVOKED
