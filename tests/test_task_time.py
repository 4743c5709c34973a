"""Celery's time verbs on SQS + Lambda (issue 22): ETA/countdown past 15 minutes, waiting for a
result, per-task rate limits and periodic tasks. Over real HTTP or the task API on the emulator."""

from __future__ import annotations

import time
from datetime import UTC, datetime, timedelta
from typing import Any

from helpers import final_record

from chalicelib.tasks import outbox
from chalicelib.tasks.decorator import task
from chalicelib.tasks.models import TaskRecord


@task("tests.time.double")
def double(value: int) -> dict[str, int]:
    return {"double": value * 2}


# ---------------------------------------------------------------- ETA and countdown of any length


def test_a_one_hour_countdown_waits_in_the_outbox_and_the_relay_sends_it_when_due(api, workers) -> None:
    sent_at = time.time()
    task_id = double.apply_async((21,), countdown=3600)
    record = TaskRecord.get(task_id, consistent_read=True)
    assert record.status == "PENDING" and record.outbox_shard is not None  # parked, not sent to SQS
    assert sent_at + 3599 <= record.outbox_eta <= time.time() + 3601
    assert record.outbox_eta - record.outbox_due == 900  # due for the relay 15 minutes before its time
    # A relay run now leaves it alone: it is not due for 45 minutes.
    outbox.relay(lambda: 60_000)
    assert TaskRecord.get(task_id, consistent_read=True).outbox_shard is not None
    # The relay an hour later (its clock moved) sends it with no delay left; the worker runs it.
    assert outbox.relay(lambda: 60_000, now=sent_at + 3601)["relayed"] >= 1
    done = final_record(api, task_id)
    assert done["status"] == "SUCCESS" and done["result"] == {"double": 42} and done["attempts"] == 1


def test_the_relay_sends_an_eta_task_with_the_delay_it_has_left(paused_workers) -> None:
    eta = datetime.now(UTC) + timedelta(hours=2)
    task_id = double.apply_async((1,), eta=eta)
    record = TaskRecord.get(task_id, consistent_read=True)
    assert abs(record.outbox_eta - eta.timestamp()) <= 1
    # 1 h 50 min later the relay finds it due and gives SQS the 10 minutes left, not 0.
    message = outbox.resend_of(record, eta.timestamp() - 600)
    assert 599 <= message.countdown <= 601
    assert outbox.resend_of(record, eta.timestamp() - 7200).countdown == 900  # never more than SQS allows


def test_a_naive_eta_is_utc_and_a_past_eta_runs_at_once(api, workers) -> None:
    task_id = double.apply_async((5,), eta=datetime.now(UTC).replace(tzinfo=None) - timedelta(minutes=5))
    assert final_record(api, task_id)["result"] == {"double": 10}
