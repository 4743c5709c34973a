"""Where a fan-out's items live: a small persistence interface and its two implementations.

The rules of the items (which page may work, the fences on the position, completion, the
hand-off) are in `chain.py`; a store only applies one change atomically when its precondition
holds (a conditional write), as `tasks/store.py` does for task records. `DynamoMailStore` is the
deployed one (PynamoDB, the `MailState` model); `MemoryMailStore` lets unit tests drive the rules
with no AWS at all. `chain.py` asks `current()` for the store: built on first use (never at
import), replaced for a test by `configure(store)`. The SES rate's item has its own seam
(`platform/ratelimit.py`'s SlotStore).
"""

from __future__ import annotations

import json
import threading
from dataclasses import dataclass, field, fields
from datetime import datetime
from functools import reduce
from operator import and_
from typing import Any, Protocol

from pynamodb.exceptions import DoesNotExist, PutError

from chalicelib.mail.models import MailState
from chalicelib.platform.dynamodb import condition_failed, updated_if, utcnow
from chalicelib.platform.seam import Seam


@dataclass(frozen=True)
class ChainState:
    """One item: a fan-out's dealer (`fanout#<book>`) or one segment's chain (`fanout#<book>#<n>`)."""

    pk: str
    owner: str | None = None
    root_task: str | None = None
    page: str | None = None
    position: Any = None
    next_page: str | None = None
    complete: int = 0
    mailed: int = 0
    failed: int = 0
    retrying: int = 0
    pages: int = 0
    segments: int | None = None
    last_segment: Any = None
    first_segment: Any = None
    failures: list[str] | None = None
    retry_pending: Any = None
    tat: float | None = None
    created_at: datetime | None = None
    updated_at: datetime | None = None
    expires_at: datetime | None = None


FIELDS = tuple(f.name for f in fields(ChainState))
JSON_FIELDS = frozenset({"position", "last_segment", "first_segment", "retry_pending"})
COUNTERS = ("complete", "mailed", "failed", "retrying", "pages")  # 0 when absent (the model's default)
ANY: Any = object()  # a Guard's position that is not checked


@dataclass(frozen=True)
class Guard:
    """The precondition of a write: every condition given holds (none given: always, creating the item).

    `page`: the item's page is that one. `next_page`: the hand-off names that page;
    `no_next_page`: no hand-off is named. `position`: the item stands at that position
    (compared as the stored JSON, as DynamoDB does); None: it has no position.
    """

    page: str | None = None
    next_page: str | None = None
    no_next_page: bool = False
    position: Any = ANY

    def holds(self, item: dict[str, Any] | None) -> bool:
        """Whether the guard holds for `item` (the stored fields, JSON ones as text; None when absent)."""
        row = item or {}
        if self.page is not None and row.get("page") != self.page:
            return False
        if self.next_page is not None and row.get("next_page") != self.next_page:
            return False
        if self.no_next_page and "next_page" in row:
            return False
        if self.position is ANY:
            return True
        return row.get("position") == (None if self.position is None else json.dumps(self.position))


@dataclass(frozen=True)
class Change:
    """What one write does: fields set and removed, counters added to, failure lines appended."""

    set: dict[str, Any] = field(default_factory=dict)
    remove: tuple[str, ...] = ()
    add: dict[str, int] = field(default_factory=dict)
    append_failures: tuple[str, ...] = ()


class MailStore(Protocol):
    """Persistence of the fan-out's items, keyed by `pk`; every write is atomic."""

    def create(self, pk: str, values: dict[str, Any]) -> ChainState | None:
        """Write a new item (the counters at 0); None when one with that key exists already."""
        ...

    def get(self, pk: str) -> ChainState | None:
        """The item (a strongly consistent read), or None."""
        ...

    def get_many(self, keys: list[str]) -> list[ChainState]:
        """The items of those keys that exist (strongly consistent), in no particular order."""
        ...

    def write(self, pk: str, change: Change, guard: Guard = Guard()) -> ChainState | None:
        """Apply `change` if `guard` holds; the item as written, or None when the guard failed."""
        ...


def _state(item: dict[str, Any]) -> ChainState:
    values: dict[str, Any] = {}
    for name in FIELDS:
        value = item.get(name)
        if value is not None:
            values[name] = json.loads(value) if name in JSON_FIELDS else list(value) if name == "failures" else value
    return ChainState(**values)


class MemoryMailStore:
    """Items in a dict, under a lock: for unit tests of the fan-out's rules (no AWS).

    JSON fields are kept as their JSON text, as DynamoDB keeps them, so a fence on the position
    compares what DynamoDB compares.
    """

    def __init__(self) -> None:
        self.items: dict[str, dict[str, Any]] = {}
        self._lock = threading.Lock()

    @staticmethod
    def _stored(name: str, value: Any) -> Any:
        return json.dumps(value) if name in JSON_FIELDS else value

    def create(self, pk: str, values: dict[str, Any]) -> ChainState | None:
        with self._lock:
            if pk in self.items:
                return None
            now = utcnow()
            item: dict[str, Any] = {"pk": pk, "created_at": now, "updated_at": now, **dict.fromkeys(COUNTERS, 0)}
            item.update({name: self._stored(name, value) for name, value in values.items() if value is not None})
            self.items[pk] = item
            return _state(item)

    def get(self, pk: str) -> ChainState | None:
        with self._lock:
            item = self.items.get(pk)
            return None if item is None else _state(item)

    def get_many(self, keys: list[str]) -> list[ChainState]:
        with self._lock:
            return [_state(self.items[pk]) for pk in dict.fromkeys(keys) if pk in self.items]

    def write(self, pk: str, change: Change, guard: Guard = Guard()) -> ChainState | None:
        with self._lock:
            current = self.items.get(pk)
            if not guard.holds(current):
                return None
            item = dict(current or {"pk": pk})
            if change.append_failures:
                if "failures" not in item:  # DynamoDB's list_append refuses a missing list too
                    raise LookupError(f"{pk} has no failures list to append to")
                item["failures"] = [*item["failures"], *change.append_failures]
            item.update({name: self._stored(name, value) for name, value in change.set.items()})
            for name in change.remove:
                item.pop(name, None)
            for name, amount in change.add.items():
                item[name] = int(item.get(name) or 0) + amount
            self.items[pk] = item
            return _state(item)


def _attribute(name: str) -> Any:
    """The MailState attribute named `name` (typed Any: it is used for any field)."""
    return getattr(MailState, name)


def _condition(guard: Guard) -> Any:
    """The condition expression of a guard, its parts in the order the fan-out always wrote them."""
    parts: list[Any] = []
    if guard.page is not None:
        parts.append(MailState.page == guard.page)
    if guard.next_page is not None:
        parts.append(MailState.next_page == guard.next_page)
    if guard.no_next_page:
        parts.append(MailState.next_page.does_not_exist())
    if guard.position is not ANY:
        parts.append(
            MailState.position.does_not_exist() if guard.position is None else MailState.position == guard.position
        )
    return reduce(and_, parts) if parts else None


def _from_model(model: MailState) -> ChainState:
    values: dict[str, Any] = {name: getattr(model, name, None) for name in FIELDS}
    return ChainState(**{name: value for name, value in values.items() if value is not None})


class DynamoMailStore:
    """Items in the DynamoDB mail table (`MailState`); guards become condition expressions."""

    def create(self, pk: str, values: dict[str, Any]) -> ChainState | None:
        fresh = MailState(pk, **values)
        try:
            fresh.save(condition=MailState.pk.does_not_exist())
        except PutError as exc:
            if condition_failed(exc):
                return None
            raise
        return _from_model(fresh)

    def get(self, pk: str) -> ChainState | None:
        try:
            return _from_model(MailState.get(pk, consistent_read=True))
        except DoesNotExist:
            return None

    def get_many(self, keys: list[str]) -> list[ChainState]:
        return [_from_model(item) for item in MailState.batch_get(keys, consistent_read=True)]

    def write(self, pk: str, change: Change, guard: Guard = Guard()) -> ChainState | None:
        actions = [_attribute(name).add(amount) for name, amount in change.add.items()]
        actions += [_attribute(name).set(value) for name, value in change.set.items()]
        actions += [_attribute(name).remove() for name in change.remove]
        if change.append_failures:
            actions.append(MailState.failures.set(MailState.failures.append(list(change.append_failures))))
        item = MailState(pk)
        if not updated_if(item, actions, _condition(guard)):
            return None
        return _from_model(item)


_SEAM: Seam[MailStore] = Seam(DynamoMailStore)
#: The store the fan-out uses: the DynamoDB one unless `configure` chose another.
current = _SEAM.current
#: Use a store from now on (a test's memory store); None: back to the DynamoDB one.
configure = _SEAM.configure
