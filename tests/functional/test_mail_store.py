"""The DynamoDB mail store means what the in-memory store means (over the emulator), so the
fan-out rules' unit tests over memory (tests/unit/test_fanout_chain_units.py) hold for the
deployed store. Every assertion runs against both stores with the same inputs.
"""

from __future__ import annotations

import uuid
from datetime import UTC, datetime
from typing import Any

import pytest

from chalicelib.mail.store import ChainState, Change, DynamoMailStore, Guard, MailStore, MemoryMailStore

STAMP = datetime(2026, 1, 2, 3, 4, 5, 600000, tzinfo=UTC)
START: dict[str, Any] = {"a": 0, "k": None}
AFTER: dict[str, Any] = {"a": 0, "k": {"author_key": {"S": "le guin"}, "email": {"S": "m@x.org"}}}

ITEMS: list[dict[str, Any] | None] = [
    None,
    {"page": "p0", "position": START, "failures": []},
    {"page": "p0", "position": AFTER, "failures": ["a@x.org bounced"], "mailed": 3},
    {"page": "p0", "next_page": "p1", "position": AFTER, "failures": [], "pages": 1},
    {"page": "p1", "failures": [], "complete": 1},
]

GUARDS = [
    Guard(),
    Guard(page="p0"),
    Guard(next_page="p1"),
    Guard(page="p0", no_next_page=True),
    Guard(page="p0", no_next_page=True, position=START),
    Guard(page="p0", no_next_page=True, position=AFTER),
    Guard(page="p1", no_next_page=True, position=None),
    Guard(position={"k": None, "a": 0}),  # START's fields in another order: another JSON text
]

CHANGE = Change(
    set={"updated_at": STAMP, "position": AFTER, "retry_pending": {"id": "r", "recipients": [["a", "b"]]}},
    remove=("next_page",),
    add={"mailed": 2, "retrying": -1, "pages": 1},
)


def _both() -> tuple[MailStore, MailStore]:
    return DynamoMailStore(), MemoryMailStore()


def _fields(item: dict[str, Any]) -> dict[str, Any]:
    return {"owner": "alice", "created_at": STAMP, "updated_at": STAMP, **item}


def test_every_guard_holds_in_dynamodb_exactly_where_it_holds_in_memory() -> None:
    disagreements = []
    for item in ITEMS:
        for guard in GUARDS:
            key = f"store-{uuid.uuid4()}"
            answers = []
            for store in _both():
                if item is not None:
                    assert store.create(key, _fields(item)) is not None
                answers.append((store.write(key, CHANGE, guard), store.get(key)))
            if answers[0] != answers[1]:
                disagreements.append((item, guard, *answers))
    assert not disagreements


def test_create_reads_back_the_same_and_only_once() -> None:
    key = f"store-{uuid.uuid4()}"
    created = []
    for store in _both():
        created.append(store.create(key, {"page": "p0", "position": START, "failures": [], "owner": "alice"}))
        assert store.create(key, {"page": "other"}) is None
        assert store.get(key) == created[-1]
    dynamo, memory = created
    assert dynamo is not None and memory is not None
    assert (dynamo.mailed, dynamo.complete, dynamo.segments) == (memory.mailed, memory.complete, memory.segments)
    assert dynamo.created_at and memory.created_at
    same = {"created_at": None, "updated_at": None}
    assert ChainState(**{**dynamo.__dict__, **same}) == ChainState(**{**memory.__dict__, **same})


def test_failures_append_and_counters_add_alike_and_an_absent_list_is_refused_by_both() -> None:
    key, bare = f"store-{uuid.uuid4()}", f"store-{uuid.uuid4()}"
    answers = []
    for store in _both():
        assert store.create(key, _fields({"failures": ["one"]})) is not None
        store.write(key, Change(add={"failed": 2}, append_failures=("two", "three")))
        answers.append(store.write(key, Change(add={"failed": 1, "segments": 1}, append_failures=("four",))))
        with pytest.raises(Exception):  # noqa: B017 - DynamoDB's ValidationException, memory's LookupError
            store.write(bare, Change(append_failures=("x",)))
        assert store.get(bare) is None
    assert answers[0] == answers[1]
    assert answers[0] is not None and answers[0].failures == ["one", "two", "three", "four"]
    assert (answers[0].failed, answers[0].segments) == (3, 1)


def test_an_unguarded_write_creates_the_item_in_both() -> None:
    key = f"store-{uuid.uuid4()}"
    answers = [
        store.write(key, Change(set={"updated_at": STAMP}, add={"mailed": 4, "retrying": -2})) for store in _both()
    ]
    assert answers[0] == answers[1] and answers[0] is not None
    assert (answers[0].mailed, answers[0].retrying, answers[0].failed, answers[0].complete) == (4, -2, 0, 0)


def test_many_items_are_read_alike() -> None:
    keys = [f"store-{uuid.uuid4()}" for _ in range(3)]
    found = []
    for store in _both():
        for key in keys[:2]:
            store.create(key, _fields({"mailed": 1}))
        found.append(sorted(store.get_many(keys), key=lambda state: state.pk))
    assert found[0] == found[1] and [state.pk for state in found[0]] == sorted(keys[:2])
