"""Pure logic of the time verbs (issue 22): polling, error rebuilding, rates, slots, cron."""

from __future__ import annotations

import itertools
import threading
import uuid
from datetime import UTC, datetime, timedelta
from typing import Any, cast

import pytest

from chalicelib.ops.task_query import wait_seconds
from chalicelib.platform.errors import ValidationFailed
from chalicelib.platform.ratelimit import parse_rate, reserve
from chalicelib.tasks.decorator import task
from chalicelib.tasks.envelope import Envelope
from chalicelib.tasks.periodic import periodic_task
from chalicelib.tasks.registry import Task, countdown_until
from chalicelib.tasks.result import TaskError, error_for, poll_delays, wait_for
from chalicelib.tasks.schedules import cron_expression, matches, next_run, rate_expression, rate_seconds

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
    record = wait_for("t-1", 3, read=lambda _: cast("Any", _Record("STARTED")), sleep=slept.append)
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


# ---------------------------------------------------------------- rate limits


@pytest.mark.parametrize(
    ("text", "per_second"), [("10/s", 10.0), ("100/m", 100 / 60), ("1000/h", 1000 / 3600), ("5", 5.0), ("0.5/s", 0.5)]
)
def test_celery_rate_strings(text: str, per_second: float) -> None:
    assert parse_rate(text) == pytest.approx(per_second)


@pytest.mark.parametrize("text", ["0/s", "10/d", "/m", "ten/s", "", "-1/s", "1e9/s/s"])
def test_bad_rate_strings_are_refused(text: str) -> None:
    with pytest.raises(ValueError, match="rate"):
        parse_rate(text)


def test_a_task_with_a_bad_rate_limit_is_refused_at_declaration() -> None:
    with pytest.raises(ValueError, match="rate_limit"):
        task("tests.units.bad_rate", rate_limit="100/week")


class _MemorySlots:
    """A SlotStore in memory, with the same compare-and-swap as the DynamoDB one."""

    def __init__(self) -> None:
        self.key = f"memory-{id(self)}"
        self.tat: float | None = None
        self.lock = threading.Lock()

    def read(self) -> float | None:
        with self.lock:
            return self.tat

    def swap(self, old: float | None, new: float) -> bool:
        with self.lock:
            if self.tat != old:
                return False
            self.tat = new
            return True


def test_concurrent_reservations_never_share_a_slot() -> None:
    slots, now = _MemorySlots(), 1_000.0
    starts: list[float] = []

    def take() -> None:
        for _ in range(10):
            granted, start = reserve(slots, 1, 10.0, clock=lambda: now)
            assert granted
            starts.append(start)

    threads = [threading.Thread(target=take) for _ in range(5)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert sorted(starts) == pytest.approx([now + i / 10 for i in range(50)])  # 10/s, one slot each


def test_a_reservation_with_a_deadline_takes_nothing_when_too_late() -> None:
    slots = _MemorySlots()
    assert reserve(slots, 10, 1.0, clock=lambda: 0.0) == (True, 0.0)
    assert reserve(slots, 1, 1.0, latest_start=5.0, clock=lambda: 0.0) == (False, 10.0)
    assert slots.tat == 10.0


def _limited(rate: str) -> Task:
    @task(f"tests.units.limited.{uuid.uuid4().hex}", rate_limit=rate)
    def run() -> None:
        return None

    return run


def test_a_carried_slot_counts_only_on_the_first_receive_and_only_while_fresh(monkeypatch: Any) -> None:
    from chalicelib.platform import ratelimit  # the module throttle reserves through
    from chalicelib.tasks import throttle

    limited = _limited("1/s")
    taken: list[str] = []

    def reserve(*a: Any, **k: Any) -> tuple[bool, float]:
        taken.append("new")
        return True, 500.0

    monkeypatch.setattr(ratelimit, "reserve", reserve)
    env = Envelope(task_id="t-1", task=limited.name, slot=200.0)
    assert throttle.admit(limited, env, receives=1, clock=lambda: 100.0) == 200.0  # its own slot, still ahead
    assert taken == []
    assert throttle.admit(limited, env, receives=2, clock=lambda: 100.0) == 500.0  # a retry takes a new slot
    assert throttle.admit(limited, env, receives=1, clock=lambda: 210.0) == 500.0  # stale: others ran since
    assert taken == ["new", "new"]


def test_an_envelope_carries_its_slot_and_older_bodies_have_none() -> None:
    from chalicelib.tasks.envelope import decode

    env = Envelope(task_id="t-1", task="x", slot=1_700_000_000.25)
    assert decode(env.encode()) == env
    assert decode(Envelope(task_id="t-1", task="x").encode()).slot is None
    assert '"slot"' not in Envelope(task_id="t-1", task="x").encode()


# ---------------------------------------------------------------- periodic schedules


@pytest.mark.parametrize(
    ("cron", "expression"),
    [
        ("0 3 * * *", "cron(0 3 * * ? *)"),
        ("*/15 9-17 * * 1-5", "cron(*/15 9-17 ? * 2-6 *)"),
        ("30 6 1 * *", "cron(30 6 1 * ? *)"),
        ("0 0 * * 0", "cron(0 0 ? * 1 *)"),
        ("0 0 * * 7", "cron(0 0 ? * 1 *)"),
        ("0 12 * * MON,FRI", "cron(0 12 ? * MON,FRI *)"),
    ],
)
def test_unix_cron_becomes_eventbridge_cron(cron: str, expression: str) -> None:
    assert cron_expression(cron) == expression


@pytest.mark.parametrize(
    "cron",
    ["0 3 * *", "60 * * * *", "0 24 * * *", "0 0 1 * 1", "0 0 * * */2", "0 0 32 * *", "x * * * *", "5-1 * * * *"],
)
def test_cron_that_eventbridge_cannot_run_is_refused(cron: str) -> None:
    with pytest.raises(ValueError):
        cron_expression(cron)


@pytest.mark.parametrize(
    ("rate", "expression"),
    [
        ("1 minute", "rate(1 minute)"),
        ("1 minutes", "rate(1 minute)"),
        ("5 minute", "rate(5 minutes)"),
        ("2 hours", "rate(2 hours)"),
        ("1 day", "rate(1 day)"),
    ],
)
def test_rates_become_eventbridge_rates(rate: str, expression: str) -> None:
    assert rate_expression(rate) == expression
    assert rate_seconds(expression) == {"minute": 60, "hour": 3600, "day": 86400}[
        expression.split()[1].rstrip("s)")
    ] * int(expression[5:].split()[0])


@pytest.mark.parametrize("rate", ["0 minutes", "1 week", "5", "every minute", "1.5 hours"])
def test_bad_rates_are_refused(rate: str) -> None:
    with pytest.raises(ValueError):
        rate_expression(rate)


def test_the_local_runner_finds_the_next_cron_time_as_eventbridge_would() -> None:
    saturday = datetime(2026, 12, 5, 10, 7, tzinfo=UTC)
    assert next_run("cron(*/15 9-17 ? * 2-6 *)", saturday) == datetime(2026, 12, 7, 9, 0, tzinfo=UTC)  # Monday
    assert next_run("cron(0 3 * * ? *)", saturday) == datetime(2026, 12, 6, 3, 0, tzinfo=UTC)
    assert next_run("cron(0 0 ? * 1 *)", saturday) == datetime(2026, 12, 6, 0, 0, tzinfo=UTC)  # Sunday
    assert matches("cron(30 6 1 * ? *)", datetime(2027, 1, 1, 6, 30, 59, tzinfo=UTC))


def test_a_periodic_task_needs_one_schedule_and_a_function_name() -> None:
    for bad in ({}, {"cron": "0 3 * * *", "rate": "1 day"}):
        with pytest.raises(ValueError, match="exactly one"):
            periodic_task("tests_units_nothing", **bad)
    with pytest.raises(ValueError, match="identifier"):
        periodic_task("Bad-Name", rate="1 day")
    with pytest.raises(ValueError):
        periodic_task("tests_units_bad_cron", cron="0 0 1 * 1")
