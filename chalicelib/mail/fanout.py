"""A book's mail fan-out in pages that fit the invocation, so no subscriber count times it out.

Each page task reads confirmed subscribers in key order and mails them one round at a
time: up to FANOUT_PARALLEL_SENDS chunks (each ≤ 50, ≤ one second of the SES rate; the
round ≤ one second of the rate too) under one slot of the shared SES rate schedule, sent
as concurrent `SendBulkEmail` calls (`rounds.py`), then records the round in the fan-out's
one DynamoDB item (position after the round and counts, in one conditional update). When
the time left, less FANOUT_SAFETY_MS, would not fit another round, the page hands off: it
writes the next page's id into the item, then enqueues that page. Ids are deterministic
(book, hand-off number, position), so a duplicate or retried page finds its work recorded
and sends nothing twice, and only the page named in the item may advance it. Transient
per-destination failures are retried alone by `mail.resend` tasks, and so are the
recipients of a call that failed whole (the round's other calls did mail theirs);
permanent failures are counted and listed, never retried.

At-least-once remains in one place, as with any mail system: a crash after SES accepted
a round and before its progress write repeats that round (≤ 500 mails) once.

Segments: the first page (and its hand-offs) only *deals*. It walks the author's partition
in steps of FANOUT_SEGMENT_SIZE rows (one `Select=COUNT` Query each, `recipients.split`),
records each key range in the fan-out's item (fenced on the position, like a round) and then
sends that segment's first page. Each segment is a chain of pages as described above, with
its own item (`fanout#<book>#<n>`: position, counts, fences) and bounded by its range's last
key, so segments are disjoint and cover the partition; they run on as many default-queue
consumers as there are, all drawing on the one SES rate schedule. A dealer that dies after
recording a segment sends it again (same task id: the claim makes it once). A subscription
made during the fan-out is mailed if its key sorts after the position of the segment whose
range holds it, or past the dealt ranges (bench/README §10).
"""

from __future__ import annotations

import json
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, NotRequired, TypedDict

from pynamodb.exceptions import DoesNotExist

from chalicelib.books.models import Book
from chalicelib.mail import bulk as bulkmail
from chalicelib.mail import chain, ratelimit, recipients, rounds
from chalicelib.mail import store as mailstore
from chalicelib.mail.chain import PageSuperseded
from chalicelib.mail.chain import state_key as state_key  # re-exported: callers know it here
from chalicelib.mail.names import FANOUT_TASKS as FANOUT_TASKS  # re-exported: callers know it here
from chalicelib.mail.names import PAGE_TASK, RESEND_TASK
from chalicelib.mail.store import ChainState
from chalicelib.platform import deadline
from chalicelib.platform.authors import author_key
from chalicelib.platform.config import get_settings
from chalicelib.platform.observability import emit
from chalicelib.tasks import current, revocation
from chalicelib.tasks.dispatch import dispatch
from chalicelib.tasks.errors import TransientTaskError
from chalicelib.tasks.registry import get_task

NAMESPACE = uuid.UUID("0b8f3f7e-3b5e-4a53-9d6e-5f2f5c3b8a21")
ROOT_PAGE = "root"
RESEND_ATTEMPTS = 3
READ_CHUNKS = 10  # chunks read per Query: fewer reads, still a bounded few hundred rows in memory
READ_ROUNDS = 4  # rounds read per Query when rounds are large (at most 4 x 10 x 50 = 2,000 rows, ~200 KB)
FIRST_CHUNK_ESTIMATE = 0.5  # seconds, until a chunk has been timed
# The pages and resends are named, not imported: `chalicelib.app_tasks` declares them and calls
# this module, so the fan-out asks the registry for them (as Celery's `signature(name)` does).


def _json(value: Any) -> str:
    return json.dumps(value, sort_keys=True, separators=(",", ":"))


def page_id(book_id: str, hop: int, position: dict[str, Any], segment: int | None = None) -> str:
    """The id of the page that starts at `position` after `hop` hand-offs (of the dealer, or of a segment)."""
    chain = "" if segment is None else f":segment{segment}"
    return str(uuid.uuid5(NAMESPACE, f"{book_id}:{hop}:{_json(position)}{chain}"))


def segment_page(book_id: str, segment: int) -> str:
    """The id of a segment's first page (and of the task that runs it)."""
    return str(uuid.uuid5(NAMESPACE, f"{book_id}:segment:{segment}"))


class SegmentSpec(TypedDict):
    """A dealt segment: its number, the position it starts from and the end of its range."""

    i: int
    start: dict[str, Any]
    until: recipients.Segment
    root: str | None  # the fan-out's first task: revoking it stops every segment between rounds
    queued: NotRequired[bool]  # segment 0 only: queued as its own task, not mailed by the first task


@dataclass
class Budget:
    """Time this invocation may still spend on rounds (monotonic clock).

    A round of k calls is estimated from the last round, per call, times k, and never below
    the last round: on Lambda a round's calls overlap and its time hardly grows with k; where
    they do not (the emulator on a busy machine runs them one after another) it grows with k.
    """

    ends_at: float
    slowest: float = FIRST_CHUNK_ESTIMATE
    slowest_read: float = FIRST_CHUNK_ESTIMATE
    reads: int = 0
    last_round: float = 0.0
    per_chunk: float = 0.0

    def __post_init__(self) -> None:
        self.last_round = self.last_round or self.slowest
        self.per_chunk = self.per_chunk or self.slowest

    @classmethod
    def now(cls) -> Budget:
        usable_ms = deadline.remaining_ms() - get_settings().fanout_safety_ms
        return cls(time.monotonic() + usable_ms / 1000)

    def estimate(self, chunks: int = 1) -> float:
        """Seconds a round of `chunks` calls is expected to take."""
        return max(self.per_chunk * chunks, self.last_round)

    def room(self, chunks: int = 1) -> bool:
        """Room for one more round (counted twice: they vary) and the hand-off after it (about one round)."""
        return time.monotonic() + 3 * self.estimate(chunks) < self.ends_at

    def room_to_read(self, chunks: int = 1) -> bool:
        """Room for a read (a Query may be slower than a round), then one round and the hand-off.

        Before the first read only the read's estimate counts: a page with a short budget
        must still make progress, or its hand-offs would chain forever without mailing anyone.
        """
        if not self.reads:
            return time.monotonic() + self.slowest_read < self.ends_at
        return time.monotonic() + self.slowest_read + 3 * self.estimate(chunks) < self.ends_at

    def rounds_left(self, chunks: int = 1) -> int:
        """Rounds of `chunks` calls that still fit after one more read (at least one): a page reads
        no more than it can send, since what it read and did not send is read again by the next
        page. The first read is one round: its time is not known yet, and a page that spent its
        budget on a long first read would hand off without sending, as would every page after it."""
        if not self.reads:
            return 1
        spare = self.ends_at - time.monotonic() - self.slowest_read
        return max(1, int(spare / self.estimate(chunks)) - 2)

    def read_timed(self, started: float) -> None:
        self.reads += 1
        self.slowest_read = max(self.slowest_read, time.monotonic() - started)

    def latest_start(self, chunks: int = 1) -> float:
        """The latest wall-clock time a round may start and still finish in budget."""
        return time.time() + (self.ends_at - time.monotonic()) - 3 * self.estimate(chunks)

    def timed(self, started: float, chunks: int = 1) -> None:
        elapsed = time.monotonic() - started
        self.slowest = max(self.slowest, elapsed)
        self.last_round, self.per_chunk = elapsed, elapsed / max(1, chunks)


@dataclass
class PageResult:
    """What one page did (its task result)."""

    mailed: int = 0
    failed: int = 0
    retrying: int = 0
    chunks: int = 0
    ses_calls: int = 0
    next: str | None = None
    complete: bool = False
    skipped: str | None = None
    extra: dict[str, Any] = field(default_factory=dict)

    def add(self, outcome: bulkmail.Outcome, chunks: int = 1) -> None:
        self.mailed += len(outcome.mailed)
        self.failed += len(outcome.failed)
        self.retrying += len(outcome.retry)
        self.ses_calls += outcome.calls
        self.chunks += chunks

    def as_dict(self) -> dict[str, Any]:
        body = {k: v for k, v in self.__dict__.items() if k != "extra" and v is not None}
        return {**body, **self.extra}


# ------------------------------------------------------------------ pages


def _send_resend(book_id: str, owner: str | None, retry: dict[str, Any]) -> None:
    """Queue the resend task a retry plan describes (its id is the plan's, so at most once)."""
    signature = get_task(RESEND_TASK).s(
        book_id, retry["recipients"], retry["attempt"], task_id=retry["id"], countdown=retry["delay"]
    )
    dispatch([signature], owner)


def run_page(book_id: str, page: str, position: dict[str, Any], segment: SegmentSpec | None = None) -> dict[str, Any]:
    """Deal segments (no `segment`), or mail as many rounds of one segment as this invocation has time for."""
    try:
        book = Book.get(book_id, consistent_read=True)
    except DoesNotExist:
        return PageResult(skipped="book deleted").as_dict()
    if segment is not None:
        return _superseded_is_done(lambda: _run_segment(book, page, position, segment))
    dealt = _superseded_is_done(lambda: _run_dealer(book, page, position))
    return _run_first_segment(book, dealt) if page == ROOT_PAGE else dealt


def _superseded_is_done(run: Callable[[], dict[str, Any]]) -> dict[str, Any]:
    try:
        return run()
    except PageSuperseded as exc:
        return PageResult(skipped=str(exc)).as_dict()


def _run_first_segment(book: Book, dealt: dict[str, Any]) -> dict[str, Any]:
    """The first task mails segment 0 itself, after dealing (and again when retried, from its
    position): while it runs, revoking it (the task the API names) stops the fan-out, as
    it did with one chain of pages."""
    item = mailstore.current().get(state_key(book.id))
    first: SegmentSpec | None = item.first_segment if item is not None else None
    if not first:
        return dealt
    if first.get("queued") or not Budget.now().room_to_read():  # dealing used the time: segment 0
        # runs as its own task, marked first so that a retried first task never runs it beside that one
        chain.queue_first_segment(book.id, dict(first))
        _send_segment(book, first, inline_first=False)
        return {**dealt, "first_segment": "queued"}
    mailed = _superseded_is_done(lambda: _run_segment(book, segment_page(book.id, 0), first["start"], first))
    if str(mailed.get("skipped", "")).startswith("revoked"):
        return {**dealt, **mailed, "segments": dealt.get("segments")}
    return {**dealt, "first_segment": mailed}


def _run_dealer(book: Book, page: str, position: dict[str, Any]) -> dict[str, Any]:
    """Record and send segments of FANOUT_SEGMENT_SIZE rows while the invocation has time."""
    root = current.task_id() if page == ROOT_PAGE else None
    state = chain.begin(state_key(book.id), page, position, book.owner, first=page == ROOT_PAGE, root_task=root)
    if state is None:
        return PageResult(skipped="this page's work was done or handed on").as_dict()
    result = PageResult()
    if state.next_page:  # handed off before a crash: enqueue again (same id, so at most once)
        _hand_on(book, state, result, delay=0)
        return result.as_dict()
    if state.last_segment:  # recorded, perhaps not sent before a crash: again (same task id, so once)
        _send_segment(book, state.last_segment)
    keys = list(dict.fromkeys(author_key(str(a)) for a in book.authors))
    where: dict[str, Any] | None = state.position or recipients.START
    budget, size, dealt = Budget.now(), get_settings().fanout_segment_size, 0
    while where is not None and budget.room_to_read():
        started = time.monotonic()
        until, after = recipients.split(keys, where, size)
        budget.read_timed(started)
        spec = SegmentSpec(i=int(state.segments or 0), start=where, until=until, root=state.root_task)
        state = chain.record_segment(state, page, dict(spec), after)
        _send_segment(book, spec)
        dealt += 1
        budget.timed(started)
        where = after
    result.extra["segments"] = dealt
    if where is not None:
        _hand_on(book, state, result, delay=0)
    result.complete = where is None
    return result.as_dict()


def _send_segment(book: Book, spec: SegmentSpec, inline_first: bool = True) -> None:
    """Queue a segment's first page (its id is the segment's, so at most once); the first task
    runs segment 0 itself unless dealing left it no time (`inline_first=False`)."""
    if int(spec["i"]) == 0 and inline_first:
        return
    first = segment_page(book.id, int(spec["i"]))
    dispatch([get_task(PAGE_TASK).s(book.id, first, spec["start"], spec, task_id=first)], book.owner)


def _run_segment(book: Book, page: str, position: dict[str, Any], segment: SegmentSpec) -> dict[str, Any]:
    """Mail one segment's key range, round by round, from where its item stands."""
    book_id, number = book.id, int(segment["i"])
    first = page == segment_page(book_id, number)
    state = chain.begin(state_key(book_id, number), page, position, book.owner, first=first)
    if state is None:
        return PageResult(skipped="this page's work was done or handed on").as_dict()
    if state.retry_pending:
        _send_resend(book_id, book.owner, state.retry_pending)
    result = PageResult()
    if state.next_page:  # handed off before a crash: enqueue again (same id, so at most once)
        _hand_on(book, state, result, delay=0, segment=segment)
        return result.as_dict()
    keys = list(dict.fromkeys(author_key(str(a)) for a in book.authors))
    where: dict[str, Any] | None = state.position or recipients.START
    budget, size, listed = Budget.now(), ratelimit.chunk_size(), len(state.failures or [])
    per_round = rounds.chunks_per_round(get_settings().fanout_parallel_sends, size, ratelimit.send_rate())
    wanted = max(READ_CHUNKS, READ_ROUNDS * per_round)  # chunks per read, were there time to send them
    width = 1  # calls per round: doubled after every round up to per_round, as their time is learnt
    delay, stopped = 0, False
    while where is not None and budget.room_to_read(width) and not delay and not stopped:
        read_started = time.monotonic()
        read_size = size * max(width, min(wanted, budget.rounds_left(width) * width))
        batch, batch_end = recipients.read(keys, where, read_size, segment["until"])
        budget.read_timed(read_started)
        pending = rounds.split(batch, batch_end, size, 1, recipients.after)  # one chunk each, grouped below
        while pending:
            group, pending = pending[:width], pending[width:]
            chunks, after = [chunk for part in group for chunk in part.chunks], group[-1].after
            width = min(per_round, 2 * width)
            calls = max(1, len(chunks))
            if not budget.room(calls):
                break
            # Between rounds: a page stops, no hand-off, when the fan-out's first task was revoked.
            if result.chunks and revocation.revoked(segment.get("root")):
                stopped = True
                break
            started = time.monotonic()
            outcome = bulkmail.Outcome()
            retry = None
            count = sum(len(chunk) for chunk in chunks)
            if count:
                granted, start = ratelimit.reserve(count, budget.latest_start(calls))
                if not granted:
                    delay = max(1, min(900, int(start - time.time()) + 1))
                    break
                ratelimit.wait_until(start)
                outcome = rounds.send(
                    lambda pairs: bulkmail.send_new_book(book, pairs),
                    [[(r.email, r.author_key) for r in chunk] for chunk in chunks],
                )
                if outcome.retry:
                    retry = _retry_plan(book_id, page, where or {}, outcome.retry, attempt=1)
            state = chain.record_round(state, page, after, outcome, retry, listed)
            if retry is not None:
                _send_resend(book_id, book.owner, retry)
            emit("EmailsSent", len(outcome.mailed))
            listed += len(outcome.failed)
            result.add(outcome, calls)
            budget.timed(started, calls)
            where = after
    if stopped:
        result.skipped = "revoked: stopped between rounds"
        return result.as_dict()
    if where is None:  # the last round's write marked the segment complete
        result.complete = True
        return result.as_dict()
    _hand_on(book, state, result, delay, segment)
    return result.as_dict()


def _hand_on(book: Book, state: ChainState, result: PageResult, delay: int, segment: SegmentSpec | None = None) -> None:
    """Name the next page in the item, then enqueue it (in that order, so no two pages advance)."""
    position = state.position or recipients.START
    number = None if segment is None else int(segment["i"])
    if not state.next_page:
        state = chain.hand_off(state, page_id(book.id, int(state.pages or 0) + 1, position, number))
    assert state.next_page is not None
    dispatch(
        [get_task(PAGE_TASK).s(book.id, state.next_page, position, segment, task_id=state.next_page, countdown=delay)],
        book.owner,
    )
    result.next = state.next_page


def _retry_plan(
    book_id: str, page: str, where: dict[str, Any], failed: list[tuple[str, str]], attempt: int
) -> dict[str, Any]:
    ident = str(uuid.uuid5(NAMESPACE, f"{book_id}:resend:{page}:{_json(where)}:{attempt}"))
    base = get_settings().retry_backoff_base
    delay = int(min(900, base * 2**attempt))
    return {"id": ident, "recipients": [list(pair) for pair in failed], "attempt": attempt, "delay": delay}


def resend(book_id: str, pairs: list[list[str]], attempt: int) -> dict[str, Any]:
    """Retry the destinations SES refused for a passing reason, alone (not their whole chunk)."""
    try:
        book = Book.get(book_id, consistent_read=True)
    except DoesNotExist:
        return {"skipped": "book deleted"}
    chunk = [(email, key) for email, key in pairs]
    budget = Budget.now()
    granted, start = ratelimit.reserve(len(chunk), budget.latest_start())
    if not granted:
        raise TransientTaskError(f"no SES send slot before {start:.0f}; will retry")
    ratelimit.wait_until(start)
    size = ratelimit.chunk_size()  # a round's retries may be more than one call's 50
    outcome = rounds.send(
        lambda part: bulkmail.send_new_book(book, part), [chunk[i : i + size] for i in range(0, len(chunk), size)]
    )
    again = outcome.retry if attempt < RESEND_ATTEMPTS else []
    gave_up = [(email, "retries exhausted") for email, _ in outcome.retry] if attempt >= RESEND_ATTEMPTS else []
    failed = outcome.failed + gave_up
    chain.record_resend(book_id, len(outcome.mailed), failed, len(again) - len(chunk))
    emit("EmailsSent", len(outcome.mailed))
    if again:
        plan = _retry_plan(
            book_id, f"resend-{attempt}", {"a": 0, "k": None, "r": sorted(e for e, _ in again)}, again, attempt + 1
        )
        _send_resend(book_id, book.owner, plan)
    return {"mailed": len(outcome.mailed), "failed": len(failed), "retrying": len(again)}


def progress(book_id: str) -> dict[str, Any] | None:
    """Counts of a book's fan-out for `GET /tasks/{id}` (`chain.progress`)."""
    return chain.progress(book_id)
