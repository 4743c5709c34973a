"""The fan-out items' rules over the in-memory store: no AWS, no emulator.

Which page may work on a chain, the fences that stop a twin page, completion in the last
round's write, the hand-off, the dealer's segments, resend counts and the progress sums, as
`mail/chain.py` decides them. The pages run over DynamoDB in tests/functional/test_fanout.py,
and the two stores are held to one contract by tests/functional/test_mail_store.py.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest

from chalicelib.mail import chain
from chalicelib.mail import store as mailstore
from chalicelib.mail.bulk import Outcome
from chalicelib.mail.chain import HandOffLost, PageSuperseded, state_key
from chalicelib.mail.store import ChainState, Change, Guard, MemoryMailStore

pytestmark = pytest.mark.unit

BOOK = "book-1"
KEY = state_key(BOOK, 0)
START: dict[str, Any] = {"a": 0, "k": None}


def _at(email: str) -> dict[str, Any]:
    """A position just after `email` in the first author's partition (as `recipients.after` gives it)."""
    return {"a": 0, "k": {"author_key": {"S": "le guin"}, "email": {"S": email}}}


@pytest.fixture
def store() -> Iterator[MemoryMailStore]:
    memory = MemoryMailStore()
    mailstore.configure(memory)
    yield memory
    mailstore.configure(None)


def _first(page: str = "p0") -> ChainState:
    state = chain.begin(KEY, page, START, "alice", first=True)
    assert state is not None
    return state


def test_the_first_page_creates_the_chain_and_its_duplicate_finds_it(store: MemoryMailStore) -> None:
    state = _first()
    assert (state.page, state.position, state.owner, state.failures, state.mailed) == ("p0", START, "alice", [], 0)
    assert state.expires_at is not None
    again = chain.begin(KEY, "p0", START, "alice", first=True)
    assert again == state  # nothing was overwritten: the duplicate works on the same item (the fences decide)


def test_only_the_named_or_handed_on_page_may_work(store: MemoryMailStore) -> None:
    assert chain.begin(KEY, "p1", START, "alice", first=False) is None  # no chain yet: a later page never makes one
    state = _first()
    assert chain.begin(KEY, "p1", START, "alice", first=False) is None  # not handed on to it
    chain.hand_off(state, "p1")
    taken = chain.begin(KEY, "p1", START, "alice", first=False)
    assert taken is not None and (taken.page, taken.next_page) == ("p1", None)
    assert chain.begin(KEY, "p0", START, "alice", first=True) is None  # the older page has nothing to do
    assert chain.begin(KEY, "p1", START, "alice", first=False) == taken  # its own redelivery goes on


def test_a_twin_page_loses_its_place_at_its_first_round(store: MemoryMailStore) -> None:
    one = _first()
    twin = chain.begin(KEY, "p0", START, "alice", first=True)
    assert twin is not None
    moved = chain.record_round(one, "p0", _at("b@x.org"), Outcome(mailed=["a@x.org", "b@x.org"]), None, 0)
    assert (moved.position, moved.mailed) == (_at("b@x.org"), 2)
    with pytest.raises(PageSuperseded, match="lost its place"):
        chain.record_round(twin, "p0", _at("b@x.org"), Outcome(mailed=["a@x.org", "b@x.org"]), None, 0)
    assert store.get(KEY) == moved  # the twin's round was not counted


def test_the_last_round_completes_the_chain_in_the_same_write(store: MemoryMailStore) -> None:
    state = chain.record_round(_first(), "p0", _at("a@x.org"), Outcome(mailed=["a@x.org"]), None, 0)
    done = chain.record_round(state, "p0", None, Outcome(mailed=["b@x.org"], retry=[("c@x.org", "k")]), None, 0)
    assert (done.complete, done.position, done.pages, done.mailed, done.retrying) == (1, None, 1, 2, 1)
    assert chain.begin(KEY, "p0", START, "alice", first=True) is None  # a redelivered page never starts over


def test_a_round_keeps_its_retry_plan_and_lists_failures_up_to_the_cap(store: MemoryMailStore) -> None:
    state = _first()
    failed = [(f"f{n}@x.org", "MessageRejected") for n in range(60)]
    plan = {"id": "resend-1", "recipients": [["r@x.org", "k"]], "attempt": 1, "delay": 2}
    state = chain.record_round(state, "p0", _at("m@x.org"), Outcome(failed=failed), plan, 0)
    assert state.retry_pending == plan and state.failed == 60 and len(state.failures or []) == 60
    state = chain.record_round(state, "p0", _at("z@x.org"), Outcome(failed=failed), None, listed=60)
    assert state.failed == 120 and len(state.failures or []) == chain.MAX_FAILURES_LISTED
    assert (state.failures or [])[0] == "f0@x.org MessageRejected"
    state = chain.record_round(state, "p0", _at("zz@x.org"), Outcome(failed=failed[:1]), None, listed=100)
    assert state.failed == 121 and len(state.failures or []) == chain.MAX_FAILURES_LISTED


def test_a_page_hands_on_once_and_then_records_nothing(store: MemoryMailStore) -> None:
    state = _first()
    handed = chain.hand_off(state, "p1")
    assert (handed.next_page, handed.pages) == ("p1", 1)
    with pytest.raises(HandOffLost):
        chain.hand_off(state, "p1-other")  # a twin of p0 cannot name another successor
    with pytest.raises(PageSuperseded):
        chain.record_round(handed, "p0", _at("a@x.org"), Outcome(mailed=["a@x.org"]), None, 0)
    taken = chain.begin(KEY, "p1", START, "alice", first=False)
    assert taken is not None
    with pytest.raises(HandOffLost):
        chain.hand_off(handed, "p2")  # p0 is no longer the chain's page


def test_the_dealer_records_each_segment_once_and_ends_with_the_last(store: MemoryMailStore) -> None:
    dealer = chain.begin(state_key(BOOK), "root", START, "alice", first=True, root_task="task-root")
    assert dealer is not None and dealer.root_task == "task-root"
    specs = [
        {"i": n, "start": start, "until": {"a": 0, "email": until}, "root": "task-root"}
        for n, (start, until) in enumerate([(START, "m@x.org"), (_at("m@x.org"), None)])
    ]
    dealer = chain.record_segment(dealer, "root", specs[0], _at("m@x.org"))
    assert (dealer.segments, dealer.first_segment, dealer.last_segment) == (1, specs[0], specs[0])
    twin = dealer
    dealer = chain.record_segment(dealer, "root", specs[1], None)
    assert (dealer.segments, dealer.complete, dealer.position) == (2, 1, None)
    assert dealer.first_segment == specs[0] and dealer.last_segment == specs[1]
    with pytest.raises(PageSuperseded, match="dealer root"):
        chain.record_segment(twin, "root", specs[1], None)
    chain.queue_first_segment(BOOK, specs[0])
    assert (store.get(state_key(BOOK)) or dealer).first_segment == {**specs[0], "queued": True}


def test_progress_sums_the_dealer_and_its_segments_and_completes_with_the_last(store: MemoryMailStore) -> None:
    assert chain.progress(BOOK) is None
    dealer = chain.begin(state_key(BOOK), "root", START, "alice", first=True)
    assert dealer is not None
    for n in range(2):
        spec = {"i": n, "start": START, "until": {"a": 0, "email": None}, "root": None}
        dealer = chain.record_segment(dealer, "root", spec, None if n else _at("m@x.org"))
    part = chain.begin(state_key(BOOK, 0), "s0", START, "alice", first=True)
    assert part is not None
    chain.record_round(part, "s0", None, Outcome(mailed=["a@x.org"], retry=[("r@x.org", "k")]), None, 0)
    halfway = chain.progress(BOOK)
    assert halfway is not None and halfway["segments"] == 2
    assert (halfway["mailed"], halfway["pending"], halfway["complete"]) == (1, 1, False)  # segment 1 has no item yet
    chain.record_resend(BOOK, mailed=0, failed=[("r@x.org", "retries exhausted")], retrying=-1)
    other = chain.begin(state_key(BOOK, 1), "s1", START, "alice", first=True)
    assert other is not None
    chain.record_round(other, "s1", None, Outcome(mailed=["b@x.org", "c@x.org"]), None, 0)
    final = chain.progress(BOOK)
    assert final is not None
    assert (final["mailed"], final["failed"], final["pending"], final["complete"]) == (3, 1, 0, True)
    assert final["failures"] == ["r@x.org retries exhausted"] and final["pages"] == 2


def test_the_memory_store_compares_positions_as_stored_json_and_appends_only_to_a_list(
    store: MemoryMailStore,
) -> None:
    assert store.create("k", {"position": {"a": 1, "k": None}, "failures": []}) is not None
    assert store.create("k", {}) is None
    reordered = {"k": None, "a": 1}  # equal in Python, another JSON text: DynamoDB's `=` refuses it
    assert store.write("k", Change(set={"page": "p"}), Guard(position=reordered)) is None
    assert store.write("k", Change(set={"page": "p"}), Guard(position={"a": 1, "k": None})) is not None
    assert store.write("k", Change(append_failures=("x",))) is not None
    with pytest.raises(LookupError):
        store.write("no-list", Change(append_failures=("x",)))
    upserted = store.write("counts-only", Change(add={"mailed": 2}))
    assert upserted is not None and (upserted.mailed, upserted.failed, upserted.complete) == (2, 0, 0)
