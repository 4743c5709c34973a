"""Where task records live: a small persistence interface and its two implementations.

The state machine (`tasks/records.py`) decides every transition and its precondition; a
store only applies one change atomically when the precondition holds (a conditional write).
`DynamoTaskStore` is the deployed one (PynamoDB); `MemoryTaskStore` lets unit tests drive the
state machine with no AWS at all, as Powertools' idempotency persistence layers do.
"""

from __future__ import annotations

import threading
from dataclasses import dataclass, field
from functools import reduce
from operator import or_
from typing import Any, Protocol

from pynamodb.exceptions import PutError

from chalicelib.platform.dynamodb import condition_failed, updated_if
from chalicelib.tasks.models import TaskRecord
from chalicelib.tasks.states import TaskStatus

#: The statuses a record can have (their transitions are the state machine's, tasks/records.py).
PENDING, STARTED, RETRY, SUCCESS, FAILURE, REVOKED = STATUSES = tuple(TaskStatus)


@dataclass(frozen=True)
class Guard:
    """The precondition of a write: ONE of the alternatives holds, and then every requirement.

    Alternatives: the record is `missing`; its status is in `statuses`; it is STARTED under a
    lease that ended before `lease_ended_before` (epoch seconds). With no alternative given,
    the record must exist. Requirements: its `claim_token` equals `token`; it is `in_outbox`.
    """

    missing: bool = False
    statuses: frozenset[str] = frozenset()
    lease_ended_before: int | None = None
    token: str | None = None
    in_outbox: bool = False

    def holds(self, item: dict[str, Any] | None) -> bool:
        """Whether the guard holds for `item` (the stored fields, None when absent)."""
        if item is None:
            return self.missing and self.token is None and not self.in_outbox
        alternatives = bool(self.statuses) or self.lease_ended_before is not None
        status = item.get("status")
        lease = item.get("lease_until")
        expired = (
            self.lease_ended_before is not None
            and status == STARTED
            and lease is not None
            and lease < self.lease_ended_before
        )
        if alternatives and not (status in self.statuses or expired):
            return False
        if not alternatives and self.missing:
            return False
        if self.token is not None and item.get("claim_token") != self.token:
            return False
        return not self.in_outbox or item.get("outbox_shard") is not None


@dataclass(frozen=True)
class Change:
    """The fields one write sets, sets only where absent, removes, and the attempts it adds."""

    set: dict[str, Any] = field(default_factory=dict)
    set_if_absent: dict[str, Any] = field(default_factory=dict)
    remove: tuple[str, ...] = ()
    add_attempts: int = 0


@dataclass(frozen=True)
class TaskState:
    """What the state machine reads back from a record."""

    status: str
    attempts: int = 0
    lease_until: int | None = None
    error: str | None = None
    in_outbox: bool = False
    result: Any = None


class TaskStore(Protocol):
    """Persistence of task records, keyed by task id; every write is atomic."""

    def create(self, task_id: str, fields: dict[str, Any]) -> bool:
        """Write a new record; False when one with that id exists already."""
        ...

    def get(self, task_id: str) -> TaskState | None:
        """The record's state (a strongly consistent read), or None."""
        ...

    def write(self, task_id: str, change: Change, guard: Guard) -> TaskState | None:
        """Apply `change` if `guard` holds (creating the record if missing); the new state, or None."""
        ...


def _state(fields: dict[str, Any]) -> TaskState:
    lease = fields.get("lease_until")
    return TaskState(
        status=str(fields.get("status")),
        attempts=int(fields.get("attempts") or 0),
        lease_until=None if lease is None else int(lease),
        error=fields.get("error"),
        in_outbox=fields.get("outbox_shard") is not None,
        result=fields.get("result"),
    )


class MemoryTaskStore:
    """Records in a dict, under a lock: for unit tests of the state machine (no AWS)."""

    def __init__(self) -> None:
        self.items: dict[str, dict[str, Any]] = {}
        self._lock = threading.Lock()

    def create(self, task_id: str, fields: dict[str, Any]) -> bool:
        with self._lock:
            if task_id in self.items:
                return False
            self.items[task_id] = {key: value for key, value in fields.items() if value is not None}
            return True

    def get(self, task_id: str) -> TaskState | None:
        with self._lock:
            item = self.items.get(task_id)
            return None if item is None else _state(item)

    def write(self, task_id: str, change: Change, guard: Guard) -> TaskState | None:
        with self._lock:
            current = self.items.get(task_id)
            if not guard.holds(current):
                return None
            item = dict(current or {})
            for key, value in change.set_if_absent.items():
                item.setdefault(key, value)
            item.update(change.set)
            for key in change.remove:
                item.pop(key, None)
            if change.add_attempts:
                item["attempts"] = int(item.get("attempts") or 0) + change.add_attempts
            self.items[task_id] = item
            return _state(item)


def _attribute(name: str) -> Any:
    """The TaskRecord attribute named `name` (typed Any: it is used for any field)."""
    return getattr(TaskRecord, name)


def _condition(guard: Guard) -> Any:
    alternatives: list[Any] = []
    if guard.missing:
        alternatives.append(TaskRecord.id.does_not_exist())
    if guard.statuses:
        alternatives.append(TaskRecord.status.is_in(*sorted(guard.statuses)))
    if guard.lease_ended_before is not None:
        alternatives.append((TaskRecord.status == STARTED) & (TaskRecord.lease_until < guard.lease_ended_before))
    condition = reduce(or_, alternatives) if alternatives else TaskRecord.id.exists()
    if guard.token is not None:
        condition = condition & (TaskRecord.claim_token == guard.token)
    if guard.in_outbox:
        condition = condition & TaskRecord.outbox_shard.exists()
    return condition


class DynamoTaskStore:
    """Records in the DynamoDB task table (`TaskRecord`); guards become condition expressions."""

    def record(self, task_id: str, fields: dict[str, Any]) -> TaskRecord:
        """An unsaved record, e.g. for a transaction that commits it with other writes."""
        return TaskRecord(id=task_id, **fields)

    def create(self, task_id: str, fields: dict[str, Any]) -> bool:
        try:
            self.record(task_id, fields).save(condition=TaskRecord.id.does_not_exist())
        except PutError as exc:
            if condition_failed(exc):
                return False
            raise
        return True

    def get(self, task_id: str) -> TaskState | None:
        try:
            record = TaskRecord.get(task_id, consistent_read=True)
        except TaskRecord.DoesNotExist:
            return None
        return _state(record.attribute_values)

    def write(self, task_id: str, change: Change, guard: Guard) -> TaskState | None:
        actions = [_attribute(key).set(_attribute(key) | value) for key, value in change.set_if_absent.items()]
        actions += [_attribute(key).set(value) for key, value in change.set.items()]
        actions += [_attribute(key).remove() for key in change.remove]
        if change.add_attempts:
            actions.append(TaskRecord.attempts.add(change.add_attempts))
        record = TaskRecord(task_id)
        if not updated_if(record, actions, _condition(guard)):
            return None
        return _state(record.attribute_values)
