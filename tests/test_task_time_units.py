"""Pure logic of the time verbs (issue 22): polling schedule, error rebuilding, parsing."""

from __future__ import annotations

import itertools
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from chalicelib.ops.task_query import wait_seconds
from chalicelib.platform.errors import ValidationFailed
from chalicelib.tasks.registry import countdown_until
from chalicelib.tasks.result import TaskError, error_for, poll_delays, wait_for

pytestmark = pytest.mark.unit


def test_polling_backs_off_to_two_seconds_and_costs_17_reads_for_20_seconds() -> None:
    delays = list(poll_delays(20))
    assert delays[:3] == pytest.approx([0.1, 0.15, 0.225])
    assert max(delays) == 2.0 and sum(delays) == pytest.approx(20)
    assert all(b >= a for a, b in itertools.pairwise(delays[:-1]))  # the last one may be cut short
    assert 1 + len(delays) == 17  # the first read, then one after each pause
    assert list(poll_delays(0)) == []


class _Record:
    def __init__(self, status: str) -> None:
        self.status = status


def test_wait_for_stops_reading_as_soon_as_the_record_is_final() -> None:
    statuses = iter(["PENDING", "STARTED", "SUCCESS", "never read"])
    reads: list[str] = []
    slept: list[float] = []

    def read(task_id: str) -> Any:
        reads.append(task_id)
        return _Record(next(statuses))

    record = wait_for("t-1", 20, read=read, sleep=slept.append)
    assert record is not None and record.status == "SUCCESS"
    assert len(reads) == 3 and sum(slept) < 1


def test_wait_for_gives_the_current_record_when_time_is_up() -> None:
    slept: list[float] = []
    record = wait_for("t-1", 3, read=lambda _: _Record("STARTED"), sleep=slept.append)
    assert record is not None and record.status == "STARTED" and sum(slept) == pytest.approx(3)


def test_a_failure_is_raised_as_the_builtin_it_names_and_as_task_error() -> None:
    error = error_for("t-1", "retries exhausted after 3 attempts: KeyError: 'isbn'")
    assert isinstance(error, KeyError) and isinstance(error, TaskError) and error.task_id == "t-1"
    assert type(error_for("t-1", "permanent error: ClientError: AccessDenied")) is TaskError  # not a builtin
    assert type(error_for("t-1", "expired: sent 90s ago")) is TaskError
    assert isinstance(error_for("t-1", "TimeoutError: slow"), TimeoutError)


@pytest.mark.parametrize(("raw", "seconds"), [(None, 0), ("0", 0), ("20", 20), ("07", 7)])
def test_wait_accepts_whole_seconds_up_to_20(raw: str | None, seconds: int) -> None:
    assert wait_seconds(raw) == seconds


@pytest.mark.parametrize("raw", ["21", "-1", "1.5", "", " 1", "1e1", "²", "9999"])
def test_wait_refuses_anything_else(raw: str) -> None:
    with pytest.raises(ValidationFailed):
        wait_seconds(raw)


def test_an_eta_becomes_the_whole_seconds_left() -> None:
    now = datetime(2026, 12, 7, 3, 0, tzinfo=UTC)
    assert countdown_until(now + timedelta(hours=1), now=now.timestamp()) == 3600
    assert countdown_until((now + timedelta(seconds=1.2)).replace(tzinfo=None), now=now.timestamp()) == 2
    assert countdown_until(now - timedelta(days=1), now=now.timestamp()) == 0
