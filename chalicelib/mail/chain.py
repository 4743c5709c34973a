"""The rules of a fan-out's items: which page may work on a chain, and what each step records.

A chain (the dealer's, or one segment's) is one item (`store.py`). Only the page it names may
advance it; a page hands on by naming the next page first; every round or dealt segment is
one write fenced on the position it started from, so a twin of a page (one that outlived its
lease) loses its place instead of sending the rounds after it; the chain's end is recorded in
the same write as its last round, so a redelivered page never starts over. `fanout.py` runs
the pages and calls these.
"""

from __future__ import annotations

from datetime import timedelta
from typing import Any

from chalicelib.mail import bulk as bulkmail
from chalicelib.mail import store as mailstore
from chalicelib.mail.store import ChainState, Change, Guard
from chalicelib.platform.config import get_settings
from chalicelib.platform.dynamodb import utcnow

MAX_FAILURES_LISTED = 100


class PageSuperseded(Exception):
    """Another run of the same page advanced the fan-out first (this run outlived its lease)."""


class HandOffLost(Exception):
    """A page could not name its successor: another run of it handed on or moved the chain first."""


def state_key(book_id: str, segment: int | None = None) -> str:
    """The key of the fan-out's item (the dealer's), or of one segment's item."""
    return f"fanout#{book_id}" if segment is None else f"fanout#{book_id}#{segment}"


def begin(
    key: str, page: str, position: dict[str, Any], owner: str | None, first: bool, root_task: str | None = None
) -> ChainState | None:
    """The chain's item if `page` may work on it now (the chain's `first` page creates it), else None.

    A page may work when the item names it, or names it as the next page (it then takes the
    item over, in one write that only one run of it wins). A complete chain, an older page and
    one that lost the hand-off have nothing to do.
    """
    store = mailstore.current()
    if first:
        expires = utcnow() + timedelta(days=get_settings().task_ttl_days)
        values: dict[str, Any] = {"owner": owner, "root_task": root_task, "page": page, "position": position}
        fresh = store.create(key, {**values, "failures": [], "expires_at": expires})
        if fresh is not None:
            return fresh
    state = store.get(key)
    if state is None or state.complete:
        return None  # no fan-out of this book was started (or it expired), or it is done
    if state.page == page:
        return state
    if state.next_page != page:
        return None  # an older page, or one that lost the hand-off: nothing is its to do
    change = Change(set={"page": page, "updated_at": utcnow()}, remove=("next_page",))
    return store.write(key, change, Guard(next_page=page))


def record_round(
    state: ChainState,
    page: str,
    position: dict[str, Any] | None,
    outcome: bulkmail.Outcome,
    retry: dict[str, Any] | None,
    listed: int,
) -> ChainState:
    """Record one round: its counts, the position after it (None: the chain's end), up to
    MAX_FAILURES_LISTED permanent failures in all (`listed` so far) and its retry plan.

    Fenced on the position the round started from (the item's): PageSuperseded when a twin
    of this page advanced the chain first.
    """
    counts = {"mailed": len(outcome.mailed), "failed": len(outcome.failed), "retrying": len(outcome.retry)}
    fields: dict[str, Any] = {"updated_at": utcnow()}
    removed: tuple[str, ...] = ()
    if position is not None:
        fields["position"] = position
    else:  # the chain's end: complete in the same write, so a redelivered page never starts over
        fields["complete"], counts["pages"], removed = 1, 1, ("position",)
    room = max(0, MAX_FAILURES_LISTED - listed)
    lines = tuple(f"{e} {r}" for e, r in outcome.failed[:room]) if outcome.failed and room else ()
    if retry is not None:
        fields["retry_pending"] = retry
    change = Change(set=fields, remove=removed, add=counts, append_failures=lines)
    return _fenced(state, page, change, f"page {page} lost its place; another run advanced the fan-out")


def record_segment(state: ChainState, page: str, spec: dict[str, Any], after: dict[str, Any] | None) -> ChainState:
    """Record one dealt segment (`after`: the position after it, None when every row is dealt,
    which ends the dealer), fenced on the dealer's position as a round is."""
    fields: dict[str, Any] = {"last_segment": spec, "updated_at": utcnow()}
    if spec["i"] == 0:
        fields["first_segment"] = spec
    if after is not None:
        fields["position"] = after
    else:  # every row dealt: the dealer is done (the segments finish the fan-out)
        fields["complete"] = 1
    change = Change(set=fields, remove=() if after is not None else ("position",), add={"segments": 1})
    return _fenced(state, page, change, f"dealer {page} lost its place; another run advanced the fan-out")


def _fenced(state: ChainState, page: str, change: Change, lost: str) -> ChainState:
    guard = Guard(page=page, no_next_page=True, position=state.position)
    written = mailstore.current().write(state.pk, change, guard)
    if written is None:
        raise PageSuperseded(lost)
    return written


def hand_off(state: ChainState, next_page: str) -> ChainState:
    """Name the next page in the item (before it is enqueued, so no two pages advance the chain)."""
    change = Change(set={"next_page": next_page, "updated_at": utcnow()}, add={"pages": 1})
    written = mailstore.current().write(state.pk, change, Guard(page=state.page, no_next_page=True))
    if written is None:
        raise HandOffLost(f"{state.pk}: page {state.page} could not hand on to {next_page}")
    return written


def queue_first_segment(book_id: str, first: dict[str, Any]) -> None:
    """Mark segment 0 as queued as its own task, so a retried first task never runs it beside that one."""
    mailstore.current().write(state_key(book_id), Change(set={"first_segment": {**first, "queued": True}}))


def record_resend(book_id: str, mailed: int, failed: list[tuple[str, str]], retrying: int) -> None:
    """Count a resend's outcome on the fan-out's item (`retrying`: the change in the recipients awaiting one)."""
    change = Change(
        add={"mailed": mailed, "failed": len(failed), "retrying": retrying},
        set={"updated_at": utcnow()},
        append_failures=tuple(f"{e} {r}" for e, r in failed[:10]),
    )
    mailstore.current().write(state_key(book_id), change)


def progress(book_id: str) -> dict[str, Any] | None:
    """Counts of a book's fan-out for `GET /tasks/{id}`: mailed, failed, pending (awaiting a retry).

    The sums of the fan-out's item (resends count there) and its segments' items (one
    read of them all); complete once every row is dealt and every segment is done.
    """
    store = mailstore.current()
    state = store.get(state_key(book_id))
    if state is None:
        return None
    count = int(state.segments or 0)
    parts = [state, *store.get_many([state_key(book_id, n) for n in range(count)])]
    failures = [f for part in parts for f in part.failures or []][:MAX_FAILURES_LISTED]
    return {
        "mailed": sum(int(part.mailed or 0) for part in parts),
        "failed": sum(int(part.failed or 0) for part in parts),
        "pending": sum(int(part.retrying or 0) for part in parts),
        "complete": bool(state.complete) and len(parts) == count + 1 and all(p.complete for p in parts),
        "pages": sum(int(part.pages or 0) for part in parts),
        "segments": count,
        "failures": failures,
    }
