"""revoke in the task records' state machine, over the in-memory store (no AWS)."""

from __future__ import annotations

import pytest

from chalicelib.tasks.envelope import Envelope
from chalicelib.tasks.records import FAILURE, REVOKED, SUCCESS, TaskRecords
from chalicelib.tasks.store import MemoryTaskStore

pytestmark = pytest.mark.unit


@pytest.fixture
def machine() -> TaskRecords:
    return TaskRecords(MemoryTaskStore(), lambda: 1_800_000_000.0)


def _env(task_id: str = "t-1") -> Envelope:
    return Envelope(task_id=task_id, task="tests.any", args=[1])


def test_a_pending_task_is_revoked_and_never_claimed(machine: TaskRecords) -> None:
    machine.create_pending(_env(), "default", outbox=True)
    assert machine.revoke("t-1") is None
    assert machine.status_of("t-1") == REVOKED
    assert machine.store.get("t-1").in_outbox  # type: ignore[union-attr]  # the relay still sends it, to be dropped
    assert machine.claim(_env(), "default", 60).outcome == "revoked"
    assert machine.revoke("t-1") == REVOKED  # final: a second revoke says so


def test_retry_and_running_tasks_are_revoked_and_their_attempt_cannot_end_it(machine: TaskRecords) -> None:
    machine.create_pending(_env(), "default")
    claim = machine.claim(_env(), "default", 60)
    assert claim.token is not None
    assert machine.revoke("t-1") is None  # while STARTED
    assert not machine.mark_success("t-1", claim.token, {"late": True})
    assert not machine.mark_failure("t-1", claim.token, "late error")
    assert machine.status_of("t-1") == REVOKED
    machine.create_pending(_env("t-2"), "default")
    claim = machine.claim(_env("t-2"), "default", 60)
    assert claim.token is not None
    machine.mark_retry("t-2", claim.token, "boom", "trace")
    assert machine.revoke("t-2") is None  # while RETRY
    assert machine.claim(_env("t-2"), "default", 60).outcome == "revoked"


@pytest.mark.parametrize("final", [SUCCESS, FAILURE])
def test_final_tasks_are_not_revoked(machine: TaskRecords, final: str) -> None:
    machine.create_pending(_env(), "default")
    claim = machine.claim(_env(), "default", 60)
    assert claim.token is not None
    if final == SUCCESS:
        machine.mark_success("t-1", claim.token, 1)
    else:
        machine.mark_failure("t-1", claim.token, "no")
    assert machine.revoke("t-1") == final
    assert machine.revoke("missing") == "missing"
    assert machine.mark_dead_lettered("t-1", "tests.any", "default", "moved") is None
