"""Celery's time verbs on SQS + Lambda (issue 22): ETA/countdown past 15 minutes, waiting for a
result, per-task rate limits and periodic tasks. Over real HTTP or the task API on the emulator."""

from __future__ import annotations

import threading
import time
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from helpers import dead_lettered, final_record

from chalicelib.tasks import outbox
from chalicelib.tasks.decorator import task
from chalicelib.tasks.errors import PermanentTaskError
from chalicelib.tasks.models import TaskRecord
from chalicelib.tasks.result import AsyncResult, TaskError


@task("tests.time.double")
def double(value: int) -> dict[str, int]:
    return {"double": value * 2}


@task("tests.time.slow")
def slow(seconds: float) -> str:
    time.sleep(seconds)
    return "slept"


@task("tests.time.bad_isbn", dont_autoretry_for=(ValueError,))
def bad_isbn(isbn: str) -> None:
    raise ValueError(f"not an ISBN: {isbn}")


@task("tests.time.limited", rate_limit="4/s", max_retries=0)
def limited(index: int) -> dict[str, Any]:
    return {"index": index, "started": time.time()}


@task("tests.time.refused")
def refused() -> None:
    raise PermanentTaskError("the book was deleted")


# ---------------------------------------------------------------- waiting for a result


def test_get_waits_for_the_result_like_celery(workers) -> None:
    result = double.delay(4)
    assert isinstance(result, AsyncResult) and result.id == str(result)  # still the task id callers use
    assert result.get(timeout=30) == {"double": 8}
    assert result.ready() and result.successful() and result.state == "SUCCESS"


def test_get_raises_the_tasks_error_unless_propagate_is_false(workers) -> None:
    failing = bad_isbn.delay("12")
    with pytest.raises(ValueError, match="not an ISBN: 12") as raised:
        failing.get(timeout=30)
    assert isinstance(raised.value, TaskError) and raised.value.task_id == failing.id
    assert "permanent error: ValueError: not an ISBN: 12" == failing.get(timeout=1, propagate=False)
    assert failing.failed()
    with pytest.raises(TaskError, match="the book was deleted"):
        refused.delay().get(timeout=30)


def test_get_times_out_while_the_task_waits(paused_workers) -> None:
    result = double.delay(1)
    with pytest.raises(TimeoutError):
        result.get(timeout=0.5)
    assert result.state == "PENDING" and not result.ready()


def test_get_task_with_wait_answers_when_the_record_is_final(api, workers) -> None:
    task_id = slow.delay(2)
    status, body = api.get(f"/tasks/{task_id}?wait=20", user="admin")
    assert status == 200 and body["status"] == "SUCCESS" and body["result"] == "slept"  # not STARTED: it waited


def test_get_task_with_wait_answers_the_current_record_when_the_wait_is_over(api, paused_workers) -> None:
    task_id = double.delay(3)
    status, body = api.get(f"/tasks/{task_id}?wait=1", user="admin")
    assert status == 200 and body["status"] == "PENDING" and body["id"] == task_id


@pytest.mark.parametrize("wait", ["21", "-1", "2.5", "abc", "", "1000000", "٣"])
def test_get_task_with_a_bad_wait_is_422(api, wait) -> None:
    task_id = double.delay(3)
    status, body = api.get(f"/tasks/{task_id}?wait={wait}", user="admin")
    assert status == 422 and set(body) == {"error", "message", "fields"}
    assert [f["field"] for f in body["fields"]] == ["wait"]


def test_a_stranger_waiting_on_a_task_is_refused_at_once(api, paused_workers) -> None:
    status, payload = api.post("/books", {"title": "Wait for me", "authors": ["Wait Author"]})
    assert status == 202
    task_id = payload["tasks"][0]
    started = time.monotonic()
    status, body = api.get(f"/tasks/{task_id}?wait=20", user="bob")
    assert status in (403, 404) and set(body) == {"error", "message", "fields"}
    assert time.monotonic() - started < 15  # refused before any wait, not after 20 s


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


# ---------------------------------------------------------------- rate_limit


def _invocations(settings: Any, stop: threading.Event, threads: int, batch: int) -> list[threading.Thread]:
    """`threads` concurrent stand-ins for Lambda: receive, call the real SQS handler, delete
    what it did not report as failed (as an event source mapping with ReportBatchItemFailures)."""
    from chalice.local import LambdaContext

    from chalicelib.platform.aws import client
    from chalicelib.platform.sqs import queue_url
    from chalicelib.tasks.worker import consume
    from devtools.runner import lambda_record

    sqs, url = client("sqs"), queue_url(settings.default.name)
    arn = f"arn:aws:sqs:{settings.region}:000000000000:{settings.default.name}"

    def loop() -> None:
        while not stop.is_set():
            messages = sqs.receive_message(
                QueueUrl=url,
                MaxNumberOfMessages=batch,
                WaitTimeSeconds=1,
                AttributeNames=["All"],
                MessageAttributeNames=["All"],
            ).get("Messages", [])
            if not messages:
                continue
            event = {"Records": [lambda_record(m, arn, settings.region) for m in messages]}
            answer = consume(event, LambdaContext("default_worker", 512, max_runtime_ms=30_000))
            failed = {item["itemIdentifier"] for item in answer["batchItemFailures"]}
            for message in messages:
                if message["MessageId"] not in failed:
                    sqs.delete_message(QueueUrl=url, ReceiptHandle=message["ReceiptHandle"])

    return [threading.Thread(target=loop, daemon=True) for _ in range(threads)]


def test_a_rate_limit_holds_across_concurrent_invocations_and_never_reaches_the_dlq(
    api, paused_workers, settings
) -> None:
    ids = [limited.delay(i) for i in range(16)]
    stop = threading.Event()
    threads = _invocations(settings, stop, threads=4, batch=3)
    for thread in threads:
        thread.start()
    try:
        records = [final_record(api, task_id, timeout=90) for task_id in ids]
    finally:
        stop.set()
        for thread in threads:
            thread.join(timeout=40)
    assert [r["status"] for r in records] == ["SUCCESS"] * 16
    assert [r["attempts"] for r in records] == [1] * 16  # put off, never retried: attempts unchanged
    starts = sorted(r["result"]["started"] for r in records)
    # 4 per second for all invocations together (unlimited, all 16 start within a second): any
    # second holds 4 slots; a start is its slot plus the claim's write (on a busy machine, tenths
    # of a second) or up to LATE_SLOT_SECONDS late, so allow 2 more. 16 slots span 3.75 s.
    assert max(sum(1 for t in starts if first <= t < first + 1) for first in starts) <= 6, starts
    assert starts[-1] - starts[0] >= 3, starts
    assert not set(ids) & set(dead_lettered(settings.default.dlq_name))
