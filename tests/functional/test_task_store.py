"""The DynamoDB store means what the in-memory store means (over the emulator), so the state
machine's unit tests over memory (test_task_records_units) hold for the deployed store."""

from __future__ import annotations

import uuid
from typing import Any

import pytest

from chalicelib.tasks import records
from chalicelib.tasks.envelope import Envelope
from chalicelib.tasks.records import FAILURE, PENDING, RETRY, STARTED, SUCCESS
from chalicelib.tasks.store import Change, DynamoTaskStore, Guard, MemoryTaskStore

ALL_STATUSES = (PENDING, STARTED, RETRY, SUCCESS, FAILURE)

ITEMS: list[dict[str, Any] | None] = [
    None,
    {"status": PENDING, "outbox_shard": "3"},
    {"status": PENDING},
    {"status": STARTED, "lease_until": 99, "claim_token": "a"},
    {"status": STARTED, "lease_until": 100, "claim_token": "a"},
    {"status": STARTED, "claim_token": "b"},
    {"status": RETRY},
    {"status": SUCCESS, "claim_token": "a"},
    {"status": FAILURE},
]

GUARDS = [
    Guard(missing=True),
    Guard(),
    Guard(statuses=frozenset({FAILURE})),
    Guard(missing=True, statuses=frozenset({PENDING, RETRY, FAILURE}), lease_ended_before=100),
    Guard(missing=True, statuses=frozenset(ALL_STATUSES) - {SUCCESS}),
    Guard(statuses=frozenset({STARTED}), token="a"),
    Guard(token="a"),
    Guard(in_outbox=True),
]


def test_every_guard_holds_in_dynamodb_exactly_where_it_holds_in_memory() -> None:
    dynamo = DynamoTaskStore()
    disagreements = []
    for item in ITEMS:
        for guard in GUARDS:
            task_id = f"store-{uuid.uuid4()}"
            memory = MemoryTaskStore()
            if item is not None:
                fields = {"name": "tests.store", "queue": "default", **item}
                assert dynamo.create(task_id, fields) and memory.create(task_id, fields)
            change = Change(set={"error": "written"}, set_if_absent={"name": "tests.store", "queue": "default"})
            in_dynamo = dynamo.write(task_id, change, guard)
            in_memory = memory.write(task_id, change, guard)
            if in_dynamo != in_memory:
                disagreements.append((item, guard, in_dynamo, in_memory))
    assert not disagreements


def test_a_change_reads_back_the_same_from_both_stores() -> None:
    task_id = f"store-{uuid.uuid4()}"
    dynamo, memory = DynamoTaskStore(), MemoryTaskStore()
    for store in (dynamo, memory):
        assert store.create(task_id, {"name": "first", "queue": "default", "status": PENDING, "outbox_shard": "1"})
        assert not store.create(task_id, {"name": "again", "queue": "default", "status": PENDING})
        change = Change(
            set_if_absent={"name": "second", "args": [1]},
            set={"status": STARTED, "lease_until": 500},
            remove=("outbox_shard",),
            add_attempts=1,
        )
        assert store.write(task_id, change, Guard(statuses=frozenset({PENDING}))) is not None
    assert dynamo.get(task_id) == memory.get(task_id) is not None
    assert dynamo.get(f"missing-{uuid.uuid4()}") is None


@pytest.mark.parametrize("late", ["retry", "failure"])
def test_a_finished_task_is_not_overwritten_by_its_own_token(late: str) -> None:
    """A second finish under the token that already ended the attempt changes nothing."""
    env = Envelope(task_id=str(uuid.uuid4()), task="tests.ok", args=[1])
    records.create_pending(env, "default")
    claim = records.claim(env, "default", 60)
    assert claim.token is not None and records.mark_success(env.task_id, claim.token, 2)
    if late == "retry":
        assert not records.mark_retry(env.task_id, claim.token, "TimeoutError: late", "tb")
    else:
        assert not records.mark_failure(env.task_id, claim.token, "late", "tb")
    assert records.claim(env, "default", 60).outcome == "done"
