"""Several `SendBulkEmail` calls at once: one round of chunks under one slot of the shared rate.

One `SendBulkEmail` takes ~150 ms from Lambda, so calls in sequence send at most ~330 mails/s
whatever the account's rate. A page therefore sends a round of up to `fanout_parallel_sends`
chunks (never more than one second of the rate) concurrently from a small thread pool, after
one reservation of the round's mails in the rate schedule, and records the round in one
progress write: fewer DynamoDB writes per recipient than a write per chunk, and the page's
position stays one key in the subscriber index, so duplicate or retried pages keep the same
fences as before. boto3 clients are thread-safe; the pool is the standard library's, as
Powertools has no helper for concurrent calls.

A call that fails whole (throttled, 5xx, a timeout) is not raised: the other calls of the
round did mail their recipients, and raising would repeat them when the page is retried.
Its recipients join the round's transient failures, which `mail.resend` retries alone.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from typing import Any, NamedTuple, TypeVar

from botocore.exceptions import BotoCoreError, ClientError

from chalicelib.mail import bulk as bulkmail
from chalicelib.platform.observability import logger

T = TypeVar("T")
Pair = tuple[str, str]  # (email, subscribed author key)


class Round(NamedTuple):
    """Chunks sent together and the read position after the last of them."""

    chunks: list[list[Any]]
    after: Any


def chunks_per_round(parallel: int, size: int, rate: float) -> int:
    """How many chunks of `size` a round sends at once: at most `parallel`, and at most one
    second of the rate (so a round is never a burst of more than a second's mails)."""
    return max(1, min(parallel, int(rate // max(size, 1))))


def split(batch: Sequence[T], batch_end: Any, size: int, per_round: int, after: Callable[[T], Any]) -> list[Round]:
    """Cut one read into rounds of up to `per_round` chunks of up to `size`, in key order.

    Each round's `after` is the position just past its last recipient (the read's own end for
    the last round), so the rounds cover the read exactly once, without gaps or overlap. An
    empty read is one empty round that only moves the position to the read's end.
    """
    if size < 1 or per_round < 1:
        raise ValueError("size and per_round must be at least 1")
    if not batch:
        return [Round([], batch_end)]
    span = size * per_round
    rounds = []
    for start in range(0, len(batch), span):
        members = list(batch[start : start + span])
        chunks = [members[i : i + size] for i in range(0, len(members), size)]
        end = batch_end if start + span >= len(batch) else after(members[-1])
        rounds.append(Round(chunks, end))
    return rounds


def merge(outcomes: Sequence[bulkmail.Outcome]) -> bulkmail.Outcome:
    """One outcome for a round (mailed, failed and retry in chunk order; calls summed)."""
    total = bulkmail.Outcome()
    for outcome in outcomes:
        total.mailed += outcome.mailed
        total.failed += outcome.failed
        total.retry += outcome.retry
        total.calls += outcome.calls
    return total


def send(send_one: Callable[[list[Pair]], bulkmail.Outcome], chunks: Sequence[list[Pair]]) -> bulkmail.Outcome:
    """Send every chunk at once (one thread each); a call that fails whole becomes transient failures."""

    def attempt(chunk: list[Pair]) -> bulkmail.Outcome:
        try:
            return send_one(chunk)
        except (ClientError, BotoCoreError) as exc:
            logger.warning("a SendBulkEmail call failed whole; its %d recipients will be retried: %s", len(chunk), exc)
            return bulkmail.Outcome(retry=list(chunk), calls=1)

    live = [chunk for chunk in chunks if chunk]
    if len(live) <= 1:
        return merge([attempt(chunk) for chunk in live])
    with ThreadPoolExecutor(max_workers=len(live), thread_name_prefix="ses") as pool:
        return merge(list(pool.map(attempt, live)))
