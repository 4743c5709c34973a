"""The task records' state machine over the in-memory store: no AWS, no emulator.

The same machine runs over DynamoDB in the deployed code (test_task_lifecycle covers that path).
"""

from __future__ import annotations

import pytest

from chalicelib import app_tasks  # noqa: F401 - registers the tasks (their declarations file records by book)
from chalicelib.tasks.envelope import Envelope
from chalicelib.tasks.records import FAILURE, PENDING, RETRY, STARTED, SUCCESS, TaskRecords
from chalicelib.tasks.store import Change, Guard, MemoryTaskStore

pytestmark = pytest.mark.unit


class Clock:
    """Epoch seconds that a test moves by hand."""

    def __init__(self) -> None:
        self.now = 1_800_000_000.0

    def __call__(self) -> float:
        return self.now


@pytest.fixture
def clock() -> Clock:
    return Clock()


@pytest.fixture
def store() -> MemoryTaskStore:
    return MemoryTaskStore()


@pytest.fixture
def machine(store: MemoryTaskStore, clock: Clock) -> TaskRecords:
    return TaskRecords(store, clock)


def _env(task_id: str = "t-1", *args: object) -> Envelope:
    return Envelope(task_id=task_id, task="mail.new_book", args=list(args) or ["book-1", "a@example.com"])


def test_a_task_id_is_created_once(machine: TaskRecords, store: MemoryTaskStore) -> None:
    assert machine.create_pending(_env(), "default", "alice")
    assert not machine.create_pending(_env("t-1", "other"), "default", "bob")
    item = store.items["t-1"]
    assert (item["status"], item["owner"], item["args"], item["attempts"]) == (
        PENDING,
        "alice",
        ["book-1", "a@example.com"],
        0,
    )
    assert item["book_id"] == "book-1"


def test_the_outbox_marker_goes_once_sent_or_claimed(machine: TaskRecords, store: MemoryTaskStore) -> None:
    machine.create_pending(_env("sent"), "default", outbox=True)
    assert machine.awaits_send("sent")
    assert machine.mark_sent("sent")
    assert not machine.mark_sent("sent")  # out already
    assert not machine.awaits_send("sent")
    machine.create_pending(_env("claimed"), "default", outbox=True)
    assert machine.claim(_env("claimed"), "default", 60).outcome == "claimed"
    assert "outbox_shard" not in store.items["claimed"] and not machine.awaits_send("claimed")
    assert not machine.awaits_send("never-created")


def test_claiming_twice_under_a_live_lease_is_busy(machine: TaskRecords, clock: Clock) -> None:
    machine.create_pending(_env(), "default")
    first = machine.claim(_env(), "default", 60)
    assert (first.outcome, first.attempts) == ("claimed", 1) and first.token
    clock.now += 20
    second = machine.claim(_env(), "default", 60)
    assert (second.outcome, second.token, second.retry_after) == ("busy", None, 40)


def test_an_expired_lease_can_be_claimed_again_and_the_old_holder_loses(
    machine: TaskRecords, store: MemoryTaskStore, clock: Clock
) -> None:
    machine.create_pending(_env(), "default")
    stale = machine.claim(_env(), "default", 30)
    clock.now += 31
    fresh = machine.claim(_env(), "default", 30)
    assert (fresh.outcome, fresh.attempts) == ("claimed", 2) and fresh.token != stale.token
    assert stale.token is not None and fresh.token is not None
    assert not machine.mark_success("t-1", stale.token, "late")  # its lease was taken over
    assert store.items["t-1"]["status"] == STARTED
    assert machine.mark_success("t-1", fresh.token, "ok")
    assert (store.items["t-1"]["status"], store.items["t-1"]["result"]) == (SUCCESS, "ok")


def test_retries_count_attempts_and_keep_the_last_error(machine: TaskRecords, store: MemoryTaskStore) -> None:
    machine.create_pending(_env(), "default")
    for attempt in (1, 2, 3):
        claim = machine.claim(_env(), "default", 60)
        assert (claim.outcome, claim.attempts) == ("claimed", attempt) and claim.token is not None
        assert machine.mark_retry("t-1", claim.token, f"TimeoutError: try {attempt}", "Traceback …")
        item = store.items["t-1"]
        assert (item["status"], item["error"], item["attempts"]) == (RETRY, f"TimeoutError: try {attempt}", attempt)
        assert "lease_until" not in item  # a RETRY holds no lease
    claim = machine.claim(_env(), "default", 60)
    assert claim.token is not None and machine.mark_success("t-1", claim.token, {"sent": 1})
    item = store.items["t-1"]
    assert (item["status"], item["attempts"]) == (SUCCESS, 4)
    assert "error" not in item and "traceback" not in item  # a success clears the old error


def test_success_is_final(machine: TaskRecords, store: MemoryTaskStore, clock: Clock) -> None:
    machine.create_pending(_env(), "default")
    claim = machine.claim(_env(), "default", 60)
    assert claim.token is not None and machine.mark_success("t-1", claim.token, 4)
    clock.now += 3600
    again = machine.claim(_env(), "default", 60)
    assert (again.outcome, again.attempts) == ("done", 1)
    assert not machine.mark_failure("t-1", None, "poison")
    machine.record_poison("t-1", "mail.new_book", "default", "poison")
    assert not machine.mark_dead_lettered("t-1", "mail.new_book", "default", "in the DLQ")
    assert not machine.requeue("t-1")
    assert not machine.mark_retry("t-1", claim.token, "late", "")  # the token's lease ended with the success
    assert (store.items["t-1"]["status"], store.items["t-1"]["result"]) == (SUCCESS, 4)


def test_a_failure_changes_only_by_a_rerun_or_a_redelivery(machine: TaskRecords, store: MemoryTaskStore) -> None:
    machine.create_pending(_env(), "default")
    claim = machine.claim(_env(), "default", 60)
    assert claim.token is not None and machine.mark_failure("t-1", claim.token, "permanent error: boom", "tb")
    assert (store.items["t-1"]["status"], store.items["t-1"]["traceback"]) == (FAILURE, "tb")
    assert not machine.mark_dead_lettered("t-1", "mail.new_book", "default", "in the DLQ")
    assert not machine.mark_success("t-1", claim.token, "late")  # no lease survives a final state
    assert machine.requeue("t-1")
    assert not machine.requeue("t-1")  # two clicks re-run it once
    item = store.items["t-1"]
    assert (item["status"], item["attempts"]) == (PENDING, 0) and "finished_at" not in item
    assert machine.claim(_env(), "default", 60).outcome == "claimed"


def test_a_failed_task_redriven_from_its_dlq_is_claimed_again(machine: TaskRecords) -> None:
    machine.record_poison("t-1", "mail.new_book", "default", "expired")
    claim = machine.claim(_env(), "default", 60)
    assert (claim.outcome, claim.attempts) == ("claimed", 1)


def test_a_poison_message_gets_a_failure_record_even_without_one(machine: TaskRecords, store: MemoryTaskStore) -> None:
    machine.record_poison("p-1", "mail.new_book", "default", "poison message: bad JSON")
    item = store.items["p-1"]
    assert (item["status"], item["error"], item["attempts"], item["name"]) == (
        FAILURE,
        "poison message: bad JSON",
        0,
        "mail.new_book",
    )


def test_dead_lettering_leaves_a_running_task_alone_until_its_lease_ends(
    machine: TaskRecords, store: MemoryTaskStore, clock: Clock
) -> None:
    machine.create_pending(_env(), "default")
    claim = machine.claim(_env(), "default", 60)
    assert claim.token is not None and machine.mark_retry("t-1", claim.token, "TimeoutError: slow", "tb")
    machine.claim(_env(), "default", 60)
    assert not machine.mark_dead_lettered("t-1", "mail.new_book", "default", "in the DLQ")
    assert store.items["t-1"]["status"] == STARTED
    clock.now += 61
    assert machine.mark_dead_lettered("t-1", "mail.new_book", "default", "in the DLQ")
    assert store.items["t-1"]["status"] == FAILURE
    assert store.items["t-1"]["error"] == "in the DLQ; last error: TimeoutError: slow"


def test_long_errors_are_clipped_to_their_end(machine: TaskRecords, store: MemoryTaskStore) -> None:
    machine.create_pending(_env(), "default")
    claim = machine.claim(_env(), "default", 60)
    assert claim.token is not None
    machine.mark_retry("t-1", claim.token, "x" * 100_000 + "the cause", "tb")
    assert len(store.items["t-1"]["error"]) == 32 * 1024 and store.items["t-1"]["error"].endswith("the cause")


@pytest.mark.parametrize(
    ("guard", "item", "holds"),
    [
        (Guard(missing=True), None, True),
        (Guard(missing=True), {"status": PENDING}, False),
        (Guard(), None, False),
        (Guard(), {"status": SUCCESS}, True),
        (Guard(statuses=frozenset({FAILURE})), {"status": FAILURE}, True),
        (Guard(statuses=frozenset({FAILURE})), {"status": PENDING}, False),
        (Guard(lease_ended_before=100), {"status": STARTED, "lease_until": 99}, True),
        (Guard(lease_ended_before=100), {"status": STARTED, "lease_until": 100}, False),
        (Guard(lease_ended_before=100), {"status": STARTED}, False),
        (Guard(token="a"), {"status": STARTED, "claim_token": "a"}, True),
        (Guard(token="a"), {"status": STARTED, "claim_token": "b"}, False),
        (Guard(token="a"), None, False),
        (Guard(in_outbox=True), {"status": PENDING, "outbox_shard": "3"}, True),
        (Guard(in_outbox=True), {"status": PENDING}, False),
    ],
)
def test_guards_mean_what_the_dynamodb_conditions_mean(
    guard: Guard, item: dict[str, object] | None, holds: bool
) -> None:
    assert guard.holds(item) is holds


def test_a_change_sets_only_missing_fields_where_asked(store: MemoryTaskStore) -> None:
    store.create("x", {"status": PENDING, "name": "first"})
    change = Change(set_if_absent={"name": "second", "queue": "default"}, set={"status": STARTED}, add_attempts=2)
    state = store.write("x", change, Guard())
    assert state is not None and (state.status, state.attempts) == (STARTED, 2)
    assert (store.items["x"]["name"], store.items["x"]["queue"]) == ("first", "default")


@pytest.mark.unit
def test_statuses_and_outcomes_are_types_whose_values_stay_the_stored_strings() -> None:
    """Enums (issue 25, item 5) that serialise to the strings DynamoDB and the API already hold."""
    import json

    from chalicelib.tasks.states import FINAL_STATUSES, AttemptOutcome, ClaimOutcome, TaskStatus

    assert [str(status) for status in TaskStatus] == ["PENDING", "STARTED", "RETRY", "SUCCESS", "FAILURE", "REVOKED"]
    assert json.dumps({"status": TaskStatus.FAILURE}) == '{"status": "FAILURE"}'
    assert FINAL_STATUSES == {"SUCCESS", "FAILURE", "REVOKED"}
    machine = TaskRecords(MemoryTaskStore())
    claim = machine.claim(_env("typed"), "default", 60)
    assert claim.outcome is ClaimOutcome.CLAIMED and AttemptOutcome("retry") is AttemptOutcome.RETRY
