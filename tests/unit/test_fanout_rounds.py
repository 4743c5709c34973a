"""Mail at scale, the rules that need no AWS: the rounds of a page bounded by the invocation's
time and the SES rate, per-destination results, page ids. Sends, stores and the shared rate on
the emulator are in tests/functional/test_fanout.py."""

from __future__ import annotations

import time

import pytest


def test_per_destination_results_are_sorted_into_mailed_failed_and_retry() -> None:
    from chalicelib.mail.bulk import classify

    outcome = classify(
        [("a@x.org", "k"), ("b@x.org", "k"), ("c@x.org", "k"), ("d@x.org", "k")],
        [
            {"Status": "SUCCESS", "MessageId": "1"},
            {"Status": "MESSAGE_REJECTED", "Error": "suppressed"},
            {"Status": "ACCOUNT_THROTTLED"},
            {"Status": "TRANSIENT_FAILURE"},
        ],
    )
    assert outcome.mailed == ["a@x.org"]
    assert outcome.failed == [("b@x.org", "MESSAGE_REJECTED: suppressed")]
    assert outcome.retry == [("c@x.org", "k"), ("d@x.org", "k")]


def test_page_ids_are_deterministic_per_hand_off_and_position() -> None:
    from chalicelib.mail.fanout import page_id

    position = {"a": 0, "k": {"author_key": {"S": "x"}, "email": {"S": "m@x.org"}}}
    assert page_id("b", 1, position) == page_id("b", 1, dict(reversed(list(position.items()))))
    assert len({page_id("b", 1, position), page_id("b", 2, position), page_id("c", 1, position)}) == 3


def test_a_slow_read_leaves_no_room_for_another_read_before_the_deadline() -> None:
    from chalicelib.mail.fanout import Budget

    budget = Budget(time.monotonic() + 3.0, slowest=0.1)
    assert budget.room() and budget.room_to_read()
    budget.read_timed(time.monotonic() - 2.8)  # a Query of a hot partition took 2.8 s
    assert budget.room()  # a chunk still fits
    assert not budget.room_to_read()  # another read would not: the page hands off instead


@pytest.mark.unit
def test_a_round_is_at_most_the_parallel_calls_and_at_most_one_second_of_the_rate() -> None:
    from chalicelib.mail.rounds import chunks_per_round

    assert chunks_per_round(10, 50, 2000) == 10
    assert chunks_per_round(10, 50, 120) == 2  # 100 mails: one second of 120/s holds two full chunks
    assert chunks_per_round(10, 14, 14) == 1  # a new account's 14/s: one call at a time
    assert chunks_per_round(0, 50, 5000) == 1


@pytest.mark.unit
@pytest.mark.parametrize("count", [0, 1, 49, 50, 51, 499, 500, 501, 1234])
def test_rounds_cover_a_read_exactly_once_in_key_order(count: int) -> None:
    from chalicelib.mail.rounds import split

    batch = [f"m{i:05d}@x.org" for i in range(count)]
    parts = split(batch, "END", 50, 5, lambda email: f"after {email}")

    flat = [email for part in parts for chunk in part.chunks for email in chunk]
    assert flat == batch  # no gap, no overlap, same order
    assert all(1 <= len(chunk) <= 50 for part in parts for chunk in part.chunks)
    assert all(len(part.chunks) <= 5 for part in parts)
    assert parts[-1].after == "END"  # the last round ends where the read ended
    for part in parts[:-1]:  # every other round ends just after its last recipient
        assert part.after == f"after {part.chunks[-1][-1]}"
    assert len(parts) == max(1, -(-count // 250))


@pytest.mark.unit
def test_a_round_sends_its_calls_at_once_and_a_call_that_fails_whole_is_retried_alone() -> None:
    import threading

    from botocore.exceptions import ClientError

    from chalicelib.mail.bulk import Outcome
    from chalicelib.mail.rounds import send

    chunks = [[(f"{c}-{i}@x.org", "k") for i in range(3)] for c in range(4)]
    together = threading.Barrier(4, timeout=30)  # passes only if all four calls are in flight at once

    def send_one(pairs: list[tuple[str, str]]) -> Outcome:
        together.wait()
        if pairs[0][0].startswith("2-"):
            raise ClientError({"Error": {"Code": "Throttling", "Message": "slow down"}}, "SendBulkEmail")
        return Outcome(mailed=[email for email, _ in pairs], calls=1)

    outcome = send(send_one, chunks)
    assert outcome.mailed == [e for c in (0, 1, 3) for e, _ in chunks[c]]
    assert outcome.retry == chunks[2] and outcome.failed == [] and outcome.calls == 4


@pytest.mark.unit
def test_a_page_reads_no_more_rounds_than_fit_before_its_deadline() -> None:
    from chalicelib.mail.fanout import Budget

    budget = Budget(time.monotonic() + 10.0, slowest=1.0, slowest_read=1.0)
    assert budget.rounds_left() == 1  # the first read: one round, until reads have been timed
    budget.read_timed(time.monotonic() - 1.0)
    assert budget.rounds_left() in (6, 7)  # 9 s after the read: rounds may start while 3 rounds' time is left
    budget.timed(time.monotonic() - 4.0)  # a round took 4 s
    assert budget.rounds_left() == 1  # still one: a page always makes progress


@pytest.mark.unit
def test_a_wider_round_is_estimated_from_the_last_round_per_call() -> None:
    from chalicelib.mail.fanout import Budget

    budget = Budget(time.monotonic() + 10.0, slowest=0.5)
    budget.timed(time.monotonic() - 1.0, chunks=1)  # one call took 1 s
    assert budget.estimate(4) == pytest.approx(4.0, rel=0.05)  # calls that might not overlap: 4 s for 4
    assert not budget.room(4) and budget.room(1)  # 3 x 4 s does not fit in 10 s; 3 x 1 s does
    budget.timed(time.monotonic() - 1.0, chunks=10)  # ten calls at once took 1 s (they overlapped)
    assert budget.estimate(10) == pytest.approx(1.0, rel=0.05) and budget.room(10)
