"""Where subscriptions live: a small persistence interface and its two implementations.

The rules (who owns a row, the resend slot, confirm and unsubscribe) are in `service.py` and
`consent.py`; a store only applies one change atomically when its precondition holds (a
conditional write), as `tasks/store.py` does for task records. `DynamoSubscriptionStore` is the
deployed one (PynamoDB, the `Subscriber` model); `MemorySubscriptionStore` lets unit tests
drive the rules with no AWS at all. The services ask `current()` for the store: built on first
use (never at import), replaced for a test by `configure(store)`.
"""

from __future__ import annotations

import threading
from dataclasses import dataclass, field, fields
from datetime import datetime
from functools import reduce
from operator import and_
from typing import Any, Protocol

from pynamodb.exceptions import DoesNotExist, PutError

from chalicelib.platform.dynamodb import condition_failed, updated_if, utcnow
from chalicelib.platform.seam import Seam
from chalicelib.subscriptions.models import Subscriber


@dataclass(frozen=True)
class Subscription:
    """One row: an address that wants news of an author's books (its fields are the model's)."""

    author_key: str
    email: str
    author: str | None = None
    owner: str | None = None
    status: str = "pending"  # the model's default, which PynamoDB also applies when reading a row without one
    confirm_hash: str | None = None
    confirm_expires: int | None = None
    confirm_sent_at: int | None = None
    confirm_error: str | None = None
    used_hash: str | None = None
    confirmed_at: datetime | None = None
    unsubscribed_at: datetime | None = None
    created_at: datetime | None = None


FIELDS = tuple(f.name for f in fields(Subscription))
KEYS = ("author_key", "email")


@dataclass(frozen=True)
class Guard:
    """The precondition of an update: every condition given holds (none given: always).

    `exists`: the row is there. `status`: it has that status; `status_not`: it has not (true of a
    missing row, as in DynamoDB, where `<>` holds for an absent attribute). `sent_before`: no
    confirmation mail was recorded, or the last one was before that epoch second. `confirm_hash`
    and `expires_after`: the live confirmation token is that hash and expires after that second.
    """

    exists: bool = False
    status: str | None = None
    status_not: str | None = None
    sent_before: int | None = None
    confirm_hash: str | None = None
    expires_after: int | None = None

    def holds(self, item: dict[str, Any] | None) -> bool:
        """Whether the guard holds for `item` (the stored fields, None when absent)."""
        row = item or {}
        if self.exists and item is None:
            return False
        if self.status is not None and row.get("status") != self.status:
            return False
        if self.status_not is not None and row.get("status") == self.status_not:
            return False
        sent = row.get("confirm_sent_at")
        if self.sent_before is not None and not (sent is None or sent < self.sent_before):
            return False
        if self.confirm_hash is not None and row.get("confirm_hash") != self.confirm_hash:
            return False
        expires = row.get("confirm_expires")
        return self.expires_after is None or (expires is not None and expires > self.expires_after)


@dataclass(frozen=True)
class Change:
    """The fields one update sets and removes (a missing row is created with them, as DynamoDB does)."""

    set: dict[str, Any] = field(default_factory=dict)
    remove: tuple[str, ...] = ()


@dataclass(frozen=True)
class Listing:
    """Rows of one listing and the key to start the next one after (None: the partition is done)."""

    rows: list[Subscription]
    last_key: dict[str, Any] | None


class SubscriptionStore(Protocol):
    """Persistence of subscriptions, keyed by (author key, email); every write is atomic."""

    def create(self, sub: Subscription) -> bool:
        """Write a new row; False when one with that key exists already."""
        ...

    def get(self, author_key: str, email: str, consistent: bool = True) -> Subscription | None:
        """The row, or None."""
        ...

    def update(self, author_key: str, email: str, change: Change, guard: Guard = Guard()) -> Subscription | None:
        """Apply `change` if `guard` holds; the row as written, or None when the guard failed."""
        ...

    def delete(self, author_key: str, email: str) -> None:
        """Remove the row (nothing when it is gone already)."""
        ...

    def page(self, author_key: str, owner: str, limit: int, start: dict[str, Any] | None) -> Listing:
        """Up to `limit` of an author's rows that `owner` made, in email order after `start`.

        As a DynamoDB Query with `Limit` and a filter read by PynamoDB: each request reads
        `limit` rows and keeps the owner's; requests go on until `limit` rows are kept or the
        partition ends. The next start is the last kept row when the limit fell inside a
        request, else where the last request stopped.
        """
        ...


def _record(item: dict[str, Any]) -> Subscription:
    values: dict[str, Any] = {name: item[name] for name in FIELDS if item.get(name) is not None}
    return Subscription(**values)


def _email(item: dict[str, Any]) -> str:
    return str(item["email"])


def _key_of(item: dict[str, Any]) -> dict[str, Any]:
    """The key in DynamoDB's own form, as a LastEvaluatedKey gives it."""
    return {name: {"S": item[name]} for name in KEYS}


class MemorySubscriptionStore:
    """Rows in a dict, under a lock: for unit tests of the subscription rules (no AWS)."""

    def __init__(self) -> None:
        self.items: dict[tuple[str, str], dict[str, Any]] = {}
        self._lock = threading.Lock()

    def create(self, sub: Subscription) -> bool:
        with self._lock:
            key = (sub.author_key, sub.email)
            if key in self.items:
                return False
            item = {name: getattr(sub, name) for name in FIELDS}
            item["created_at"] = item["created_at"] or utcnow()  # the model's default_for_new
            self.items[key] = {name: value for name, value in item.items() if value is not None}
            return True

    def get(self, author_key: str, email: str, consistent: bool = True) -> Subscription | None:
        with self._lock:
            item = self.items.get((author_key, email))
            return None if item is None else _record(item)

    def update(self, author_key: str, email: str, change: Change, guard: Guard = Guard()) -> Subscription | None:
        with self._lock:
            current = self.items.get((author_key, email))
            if not guard.holds(current):
                return None
            item = dict(current or {"author_key": author_key, "email": email})
            item.update(change.set)
            for name in change.remove:
                item.pop(name, None)
            self.items[(author_key, email)] = item
            return _record(item)

    def delete(self, author_key: str, email: str) -> None:
        with self._lock:
            self.items.pop((author_key, email), None)

    def page(self, author_key: str, owner: str, limit: int, start: dict[str, Any] | None) -> Listing:
        with self._lock:
            after = str(start["email"]["S"]) if start else None
            rows = [item for (key, email), item in self.items.items() if key == author_key]
            partition = sorted((item for item in rows if after is None or item["email"] > after), key=_email)
        kept: list[Subscription] = []
        for offset in range(0, len(partition), max(limit, 1)):
            request = partition[offset : offset + limit]
            answer = [item for item in request if item.get("owner") == owner]
            for position, item in enumerate(answer):
                kept.append(_record(item))
                if len(kept) == limit:
                    inside = position < len(answer) - 1  # PynamoDB resumes after the last row it returned
                    return Listing(kept, _key_of(item) if inside else self._stopped(request, partition, offset))
        return Listing(kept, None)

    @staticmethod
    def _stopped(request: list[dict[str, Any]], partition: list[dict[str, Any]], offset: int) -> dict[str, Any] | None:
        """Where one request of the listing stopped: its last row, unless the partition ended there.

        DynamoDB itself answers a LastEvaluatedKey whenever it read `Limit` rows, even the
        partition's last; the embedded emulator (moto) only when rows remain. Either way the
        next listing finds nothing more; this store answers as the emulator does, so the
        shared contract test (tests/functional/test_subscription_store.py) compares them exactly.
        """
        return _key_of(request[-1]) if offset + len(request) < len(partition) else None


def _condition(guard: Guard) -> Any:
    """The condition expression of a guard, its parts in the order the services always wrote them."""
    parts: list[Any] = []
    if guard.exists:
        parts.append(Subscriber.email.exists())
    if guard.status is not None:
        parts.append(Subscriber.status == guard.status)
    if guard.status_not is not None:
        parts.append(Subscriber.status != guard.status_not)
    if guard.sent_before is not None:
        parts.append(Subscriber.confirm_sent_at.does_not_exist() | (Subscriber.confirm_sent_at < guard.sent_before))
    if guard.confirm_hash is not None:
        parts.append(Subscriber.confirm_hash == guard.confirm_hash)
    if guard.expires_after is not None:
        parts.append(Subscriber.confirm_expires > guard.expires_after)
    return reduce(and_, parts) if parts else None


def _attribute(name: str) -> Any:
    """The Subscriber attribute named `name` (typed Any: it is used for any field)."""
    return getattr(Subscriber, name)


def _from_model(model: Subscriber) -> Subscription:
    values: dict[str, Any] = {name: getattr(model, name, None) for name in FIELDS}
    return Subscription(**values)


class DynamoSubscriptionStore:
    """Rows in the DynamoDB subscribers table (`Subscriber`); guards become condition expressions."""

    def create(self, sub: Subscription) -> bool:
        values = {name: getattr(sub, name) for name in FIELDS if name not in KEYS and getattr(sub, name) is not None}
        try:
            Subscriber(sub.author_key, sub.email, **values).save(condition=Subscriber.email.does_not_exist())
        except PutError as exc:
            if condition_failed(exc):
                return False
            raise
        return True

    def get(self, author_key: str, email: str, consistent: bool = True) -> Subscription | None:
        try:
            return _from_model(Subscriber.get(author_key, email, consistent_read=consistent))
        except DoesNotExist:
            return None

    def update(self, author_key: str, email: str, change: Change, guard: Guard = Guard()) -> Subscription | None:
        actions = [_attribute(name).set(value) for name, value in change.set.items()]
        actions += [_attribute(name).remove() for name in change.remove]
        row = Subscriber(author_key, email)
        if not updated_if(row, actions, _condition(guard)):
            return None
        return _from_model(row)

    def delete(self, author_key: str, email: str) -> None:
        Subscriber(author_key, email).delete()

    def page(self, author_key: str, owner: str, limit: int, start: dict[str, Any] | None) -> Listing:
        rows = Subscriber.query(
            author_key, filter_condition=Subscriber.owner == owner, limit=limit, last_evaluated_key=start
        )
        found = [_from_model(row) for row in rows]
        return Listing(found, rows.last_evaluated_key)


_SEAM: Seam[SubscriptionStore] = Seam(DynamoSubscriptionStore)
#: The store the services use: the DynamoDB one unless `configure` chose another.
current = _SEAM.current
#: Use a store from now on (a test's memory store); None: back to the DynamoDB one.
configure = _SEAM.configure
