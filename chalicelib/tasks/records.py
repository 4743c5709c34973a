"""Task records' state machine: PENDING → STARTED → RETRY → SUCCESS | FAILURE, and REVOKED.

REVOKED (`revoke`) is reached from PENDING, RETRY or STARTED and is final: a claim never
takes a revoked record, so its message is dropped when it arrives.

Every transition is one conditional write to the store (`tasks/store.py`), so a duplicate
SQS delivery cannot run a task that already succeeded or is running elsewhere under a live
lease. The rules live here and nowhere else; the store only persists. The module-level
functions are the machine over the DynamoDB store, as the workers and the API use it.
"""

from __future__ import annotations

import time
import uuid
import zlib
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

from pynamodb.exceptions import UpdateError
from pynamodb.expressions.condition import size

from chalicelib.platform.config import get_settings
from chalicelib.platform.dynamodb import condition_failed
from chalicelib.platform.observability import logger
from chalicelib.tasks import current, history, store
from chalicelib.tasks.envelope import Envelope
from chalicelib.tasks.models import TaskRecord
from chalicelib.tasks.registry import MAX_COUNTDOWN_SECONDS, find_task
from chalicelib.tasks.states import FINAL_STATUSES, ClaimOutcome
from chalicelib.tasks.store import Change, DynamoTaskStore, Guard, TaskStore
from chalicelib.tasks.subjects import book_id_of

STATUSES = store.STATUSES  # defined once, with the records' schema
PENDING, STARTED, RETRY, SUCCESS, FAILURE, REVOKED = STATUSES
REVOCABLE = frozenset({PENDING, RETRY, STARTED})
FINAL = FINAL_STATUSES
NOT_SUCCEEDED = frozenset({PENDING, STARTED, RETRY, FAILURE})
MAX_TEXT = 32 * 1024
OUTBOX_FIELDS = ("outbox_shard", "outbox_due", "outbox_eta")
WAITING_FIELDS = ("waiting_key", "queued_at")  # in the waiting index only while the message waits


def _declared_book_id(env: Envelope) -> str | None:
    """The book id by the task's declaration (`@task(..., book_arg=True)`), for a caller that has
    only the envelope; a task not registered in this process files by its `book_id=` keyword."""
    declared = find_task(env.task)
    return book_id_of(env.args, env.kwargs, book_arg=declared is not None and declared.book_arg)


def _clip(text: str) -> str:
    return text[-MAX_TEXT:]


def _shard(task_id: str, shards: int) -> int:
    return zlib.crc32(task_id.encode()) % max(1, shards)


def bucket_of(task_id: str, moment: datetime) -> str:
    """The `created_bucket` of a record created at `moment`: its UTC day and a stable shard."""
    return f"{moment:%Y-%m-%d}#{_shard(task_id, get_settings().task_day_shards)}"


def outbox_shard(task_id: str) -> str:
    """The outbox index partition of a task: a stable hash of its id over OUTBOX_SHARDS."""
    return str(_shard(task_id, get_settings().outbox_shards))


def waiting_keys(queue: str) -> list[str]:
    """Every partition of a queue in the waiting index (OUTBOX_SHARDS of them, like the outbox's)."""
    return [f"{queue}#{shard}" for shard in range(max(1, get_settings().outbox_shards))]


def _waiting(task_id: str, queue: str, visible_at: float) -> dict[str, Any]:
    """The fields that put a record in the waiting index: its message is visible from `visible_at`."""
    return {"waiting_key": f"{queue}#{outbox_shard(task_id)}", "queued_at": int(visible_at)}


@dataclass(frozen=True)
class Claim:
    """What `claim` found: run it (`token`), it is done, or it runs elsewhere."""

    outcome: ClaimOutcome
    token: str | None = None
    attempts: int = 0
    retry_after: int = 0


class TaskRecords:
    """The transitions of task records over a store; `clock` gives epoch seconds (tests move it)."""

    def __init__(self, persistence: TaskStore, clock: Callable[[], float] = time.time) -> None:
        self.store = persistence
        self.clock = clock

    def _now(self) -> datetime:
        return datetime.fromtimestamp(self.clock(), UTC)

    def _expiry(self) -> datetime:
        return self._now() + timedelta(days=get_settings().task_ttl_days)

    def _identity(self, task_id: str, name: str, queue: str) -> dict[str, Any]:
        """What a record needs to exist, written only where it is missing."""
        now = self._now()
        return {
            "name": name,
            "queue": queue,
            "created_at": now,
            "created_bucket": bucket_of(task_id, now),
            "expires_at": self._expiry(),
        }

    def pending_fields(
        self,
        env: Envelope,
        queue: str,
        owner: str | None = None,
        outbox: bool = False,
        countdown: int = 0,
        queued: bool = True,
        book_id: str | None = None,
    ) -> dict[str, Any]:
        """The fields of a new PENDING record; `outbox` marks it as not yet sent.

        A task sent with a countdown keeps its due time (`outbox_eta`) while it waits in the
        outbox, so that the relay re-sends it with the delay that is left, not at once. A
        countdown past SQS's 15 minutes is not sent at all: it is due for the relay 15 minutes
        before its time, and the relay sends it then with the delay left (an ETA of any length).
        `queued=False` for a task whose message another producer sends later (S3's upload
        event): it is not counted as waiting in its queue before then.
        """
        fields: dict[str, Any] = {
            **self._identity(env.task_id, env.task, queue),
            "status": PENDING,
            "owner": owner,
            "book_id": book_id or _declared_book_id(env),
            "args": env.args,
            "kwargs": env.kwargs,
            "attempts": 0,
        }
        if env.links:
            fields["links"] = env.links  # so that the relay re-sends the callbacks with the task
        parent = current.task_id()
        if parent is not None and parent != env.task_id:
            fields["parent_id"] = parent
        if queued:
            fields.update(_waiting(env.task_id, queue, self.clock() + countdown))
        if outbox:
            fields["outbox_shard"] = outbox_shard(env.task_id)
            now = int(self.clock())
            fields["outbox_due"] = now + get_settings().outbox_relay_after_seconds
            if countdown > MAX_COUNTDOWN_SECONDS:
                fields["outbox_due"] = now + countdown - MAX_COUNTDOWN_SECONDS
            if countdown > 0:
                fields["outbox_eta"] = now + countdown
        return fields

    def create_pending(
        self,
        env: Envelope,
        queue: str,
        owner: str | None = None,
        outbox: bool = False,
        countdown: int = 0,
        book_id: str | None = None,
    ) -> bool:
        """Save a PENDING record; False when a record with that id exists already."""
        fields = self.pending_fields(env, queue, owner, outbox, countdown, book_id=book_id)
        return self.store.create(env.task_id, fields)

    def awaits_send(self, task_id: str) -> bool:
        """True when the record exists, is PENDING and was never acknowledged as sent."""
        state = self.store.get(task_id)
        return state is not None and state.status == PENDING and state.in_outbox

    def mark_sent(self, task_id: str) -> bool:
        """Take the record out of the outbox: SQS accepted its message. False if it was out already."""
        return self.store.write(task_id, Change(remove=OUTBOX_FIELDS), Guard(in_outbox=True)) is not None

    def claim(self, env: Envelope, queue: str, lease_seconds: int) -> Claim:
        """Take the task for one attempt unless it succeeded or runs under a live lease."""
        now = int(self.clock())
        token = uuid.uuid4().hex
        change = Change(
            set_if_absent={**self._identity(env.task_id, env.task, queue), "args": env.args, "kwargs": env.kwargs},
            set={
                "status": STARTED,
                "claim_token": token,
                "lease_until": now + lease_seconds,
                "started_at": self._now(),
                "updated_at": self._now(),
                **({"invocation": ident} if (ident := history.invocation()) else {}),
            },
            # A received message was sent and waits no more: the record leaves the outbox and the
            # waiting index in the same write.
            remove=(*OUTBOX_FIELDS, *WAITING_FIELDS),
            add_attempts=1,
        )
        # A staged message (sent while its transaction commits) never creates its record:
        # until the commit lands it is "absent", and a transaction that failed never writes it.
        guard = Guard(missing=not env.staged, statuses=frozenset({PENDING, RETRY, FAILURE}), lease_ended_before=now)
        claimed = self.store.write(env.task_id, change, guard)
        if claimed is not None:
            return Claim(ClaimOutcome.CLAIMED, token=token, attempts=claimed.attempts)
        current = self.store.get(env.task_id)
        if current is None and env.staged:
            return Claim(ClaimOutcome.ABSENT)
        if current is None:  # deleted in between (TTL): the message comes back and claims it then
            return Claim(ClaimOutcome.BUSY, retry_after=1)
        if current.status == SUCCESS:
            return Claim(ClaimOutcome.DONE, attempts=current.attempts)
        if current.status == REVOKED:
            return Claim(ClaimOutcome.REVOKED, attempts=current.attempts)
        remaining = max(1, (current.lease_until or now) - now)
        return Claim(ClaimOutcome.BUSY, attempts=current.attempts, retry_after=remaining)

    def _finish(self, task_id: str, token: str, fields: dict[str, Any], remove: tuple[str, ...] = ()) -> bool:
        change = Change(set={**fields, "updated_at": self._now()}, remove=("lease_until", *remove))
        # Only the claim's own attempt ends it, once: a final state is never overwritten.
        return self.store.write(task_id, change, Guard(statuses=frozenset({STARTED}), token=token)) is not None

    def mark_success(self, task_id: str, token: str, result: Any) -> bool:
        """Record the result; False when the lease was lost to another worker."""
        fields = {"status": SUCCESS, "result": result, "finished_at": self._now()}
        return self._finish(task_id, token, fields, remove=("error", "traceback"))

    def mark_retry(
        self, task_id: str, token: str, error: str, traceback: str, queue: str | None = None, delay: int = 0
    ) -> bool:
        """Record a transient failure that will be retried; its message in `queue` is visible again after `delay` s."""
        fields: dict[str, Any] = {"status": RETRY, "error": _clip(error), "traceback": _clip(traceback)}
        if queue is not None:
            fields.update(_waiting(task_id, queue, self.clock() + delay))
        return self._finish(task_id, token, fields)

    def mark_failure(self, task_id: str, token: str | None, error: str, traceback: str | None = None) -> bool:
        """Record a final failure (with no token: for a message that never ran; never over a SUCCESS)."""
        fields: dict[str, Any] = {"status": FAILURE, "error": _clip(error), "finished_at": self._now()}
        if traceback:
            fields["traceback"] = _clip(traceback)
        if token is not None:
            return self._finish(task_id, token, fields)
        change = Change(set={**fields, "updated_at": self._now()}, remove=WAITING_FIELDS)
        return self.store.write(task_id, change, Guard(statuses=NOT_SUCCEEDED)) is not None

    def _fail_unrun(self, task_id: str, name: str, queue: str, reason: str, guard: Guard) -> bool:
        """Write FAILURE on a record that may not exist yet; False when `guard` does not hold."""
        change = Change(
            set_if_absent={**self._identity(task_id, name, queue), "attempts": 0},
            set={"status": FAILURE, "error": _clip(reason), "finished_at": self._now(), "updated_at": self._now()},
            remove=("lease_until", *OUTBOX_FIELDS, *WAITING_FIELDS),
        )
        return self.store.write(task_id, change, guard) is not None

    def record_poison(self, task_id: str, name: str, queue: str, reason: str) -> bool:
        """A FAILURE record for a message that could not even be run (unless it succeeded before)."""
        return self._fail_unrun(task_id, name, queue, reason, Guard(missing=True, statuses=NOT_SUCCEEDED))

    def mark_dead_lettered(self, task_id: str, name: str, queue: str, reason: str) -> str | None:
        """FAILURE for a task whose message sits in a DLQ but whose record never got there.

        Leaves alone a record that is final already or still runs under a live lease;
        keeps the last error in the reason. The reason recorded, or None when unchanged.
        """
        now = int(self.clock())
        current = self.store.get(task_id)
        if current is not None:
            if current.status in FINAL:
                return None
            if current.status == STARTED and (current.lease_until or 0) >= now:
                return None
            if current.error:
                reason = f"{reason}; last error: {current.error}"
        guard = Guard(missing=True, statuses=frozenset({PENDING, RETRY}), lease_ended_before=now)
        return reason if self._fail_unrun(task_id, name, queue, reason, guard) else None

    def requeue(self, task_id: str, queue: str | None = None) -> bool:
        """FAILURE → PENDING for a re-run under the same id (sent to `queue` now); False unless it is FAILURE now."""
        waiting = _waiting(task_id, queue, self.clock()) if queue is not None else {}
        change = Change(
            set={"status": PENDING, "attempts": 0, "updated_at": self._now(), **waiting},
            remove=("finished_at", "started_at"),
        )
        return self.store.write(task_id, change, Guard(statuses=frozenset({FAILURE}))) is not None

    def revoke(self, task_id: str) -> str | None:
        """PENDING, RETRY or STARTED → REVOKED; None when revoked now, else the status found
        ("missing" when there is no record).

        The outbox markers stay: the relay still sends an unsent message, so that its arrival
        is seen (and dropped) like any other, and callbacks that wait for it are told.
        """
        change = Change(
            set={"status": REVOKED, "error": "revoked", "finished_at": self._now(), "updated_at": self._now()},
            remove=("lease_until", *WAITING_FIELDS),  # its message is no work any more: not counted as waiting
        )
        if self.store.write(task_id, change, Guard(statuses=REVOCABLE)) is not None:
            return None
        current = self.store.get(task_id)
        return "missing" if current is None else current.status

    def stored_result(self, task_id: str) -> Any:
        """The result a record keeps (None when it has none)."""
        current = self.store.get(task_id)
        return None if current is None else current.result

    def status_of(self, task_id: str) -> str | None:
        """The record's status (a strongly consistent read), or None."""
        current = self.store.get(task_id)
        return None if current is None else current.status


MAX_CHILDREN = 100  # children listed on a parent's record; a bigger fan-out is told by its count


def add_children(parent: str, child_ids: list[str]) -> None:
    """List tasks on the record of the task that sent them (one UpdateItem; best effort, bounded)."""
    if not child_ids:
        return
    try:
        TaskRecord(parent).update(
            actions=[
                TaskRecord.children.set((TaskRecord.children | []).append(child_ids)),
                TaskRecord.children_sent.add(len(child_ids)),
            ],
            condition=TaskRecord.id.exists()
            & (TaskRecord.children.does_not_exist() | (size(TaskRecord.children) < MAX_CHILDREN)),
        )
    except UpdateError as exc:
        if not condition_failed(exc):
            logger.warning("could not list the children on their parent", extra={"error": str(exc)})


_DYNAMO = DynamoTaskStore()
_RECORDS = TaskRecords(_DYNAMO)


def new_record(
    env: Envelope,
    queue: str,
    owner: str | None = None,
    outbox: bool = False,
    countdown: int = 0,
    queued: bool = True,
    book_id: str | None = None,
) -> TaskRecord:
    """An unsaved PENDING record for an envelope (for a transaction); `outbox` marks it as not yet sent."""
    return _DYNAMO.record(env.task_id, _RECORDS.pending_fields(env, queue, owner, outbox, countdown, queued, book_id))


create_pending = _RECORDS.create_pending
awaits_send = _RECORDS.awaits_send
mark_sent = _RECORDS.mark_sent
claim = _RECORDS.claim
mark_success = _RECORDS.mark_success
mark_retry = _RECORDS.mark_retry
mark_failure = _RECORDS.mark_failure
record_poison = _RECORDS.record_poison
mark_dead_lettered = _RECORDS.mark_dead_lettered
requeue = _RECORDS.requeue
revoke = _RECORDS.revoke
status_of = _RECORDS.status_of
stored_result = _RECORDS.stored_result
