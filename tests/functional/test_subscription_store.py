"""The DynamoDB subscription store means what the in-memory store means (over the emulator), so
the rules' unit tests over memory (tests/unit/test_subscription_units.py) hold for the deployed store.

Every assertion runs against both stores with the same inputs and compares what they answer.
"""

from __future__ import annotations

import uuid
from datetime import UTC, datetime
from typing import Any

from chalicelib.subscriptions.consent import CONFIRMATION_FAILED, CONFIRMED, PENDING, UNSUBSCRIBED
from chalicelib.subscriptions.store import (
    Change,
    DynamoSubscriptionStore,
    Guard,
    MemorySubscriptionStore,
    Subscription,
    SubscriptionStore,
)

CREATED = datetime(2026, 1, 2, 3, 4, 5, 600000, tzinfo=UTC)
EMAIL = "reader@example.org"

ROWS: list[dict[str, Any] | None] = [
    None,
    {"status": PENDING},
    {"status": PENDING, "confirm_sent_at": 100, "confirm_hash": "h1", "confirm_expires": 500},
    {"status": PENDING, "confirm_sent_at": 99, "confirm_hash": "h2", "confirm_expires": 400},
    {"status": CONFIRMED, "used_hash": "h1", "confirmed_at": CREATED},
    {"status": CONFIRMATION_FAILED, "confirm_error": "bounced"},
    {"status": UNSUBSCRIBED, "confirm_sent_at": 50},
]

GUARDS = [
    Guard(),
    Guard(exists=True),
    Guard(status=PENDING),
    Guard(exists=True, status=UNSUBSCRIBED),
    Guard(status_not=CONFIRMED),
    Guard(status_not=CONFIRMED, sent_before=100),
    Guard(status=CONFIRMATION_FAILED, sent_before=100),
    Guard(confirm_hash="h1", expires_after=450),
    Guard(confirm_hash="h1", expires_after=500),
]

CHANGE = Change(
    set={"status": CONFIRMED, "confirmed_at": CREATED, "used_hash": "h9", "confirm_sent_at": 7},
    remove=("confirm_hash", "confirm_expires", "confirm_error"),
)


def _both() -> tuple[SubscriptionStore, SubscriptionStore]:
    return DynamoSubscriptionStore(), MemorySubscriptionStore()


def _author() -> str:
    return f"store-{uuid.uuid4()}"


def test_every_guard_holds_in_dynamodb_exactly_where_it_holds_in_memory() -> None:
    disagreements = []
    for row in ROWS:
        for guard in GUARDS:
            key = _author()
            answers = []
            for store in _both():
                if row is not None:
                    assert store.create(Subscription(key, EMAIL, author="A", owner="alice", created_at=CREATED, **row))
                answers.append((store.update(key, EMAIL, CHANGE, guard), store.get(key, EMAIL)))
            if answers[0] != answers[1]:
                disagreements.append((row, guard, *answers))
    assert not disagreements


def test_create_get_and_delete_answer_alike() -> None:
    key = _author()
    for store in _both():
        assert store.get(key, EMAIL) is None
        assert store.create(Subscription(key, EMAIL, author="A", owner="alice", created_at=CREATED))
        assert not store.create(Subscription(key, EMAIL, author="A", owner="mallory", created_at=CREATED))
        assert store.get(key, EMAIL) == Subscription(key, EMAIL, author="A", owner="alice", created_at=CREATED)
        assert store.get(key, EMAIL, consistent=False) == store.get(key, EMAIL)  # the emulator is always consistent
        store.delete(key, EMAIL)
        store.delete(key, EMAIL)  # gone already: nothing happens
        assert store.get(key, EMAIL) is None


def test_a_new_row_is_stamped_with_its_creation_time_by_both() -> None:
    key = _author()
    for store in _both():
        assert store.create(Subscription(key, EMAIL, author="A", owner="alice"))
        found = store.get(key, EMAIL)
        assert found is not None and found.created_at is not None and found.created_at.tzinfo is not None


def _walk(store: SubscriptionStore, key: str, owner: str, limit: int) -> list[tuple[list[str], Any]]:
    pages, start = [], None
    while True:
        page = store.page(key, owner, limit, start)
        pages.append(([row.email for row in page.rows], page.last_key))
        start = page.last_key
        if start is None or len(pages) > 20:
            return pages


def test_the_owners_listing_pages_alike_for_every_limit() -> None:
    owners = ["alice", "bob", "bob", "alice", "alice", "bob", "bob", "bob", "alice"]
    key = _author()
    stores = _both()
    for store in stores:
        for n, owner in enumerate(owners):
            assert store.create(Subscription(key, f"r{n}@example.org", author="A", owner=owner, created_at=CREATED))
    for limit in range(1, len(owners) + 2):
        for owner in ("alice", "bob", "nobody"):
            dynamo, memory = (_walk(store, key, owner, limit) for store in stores)
            assert dynamo == memory, (limit, owner)
            assert sum(len(emails) for emails, _ in memory) == owners.count(owner)
