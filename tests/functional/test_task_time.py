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


def test_get_waits_for_the_result_like_celery(workers: Any) -> None:
    result = double.delay(4)
    assert isinstance(result, AsyncResult) and result.id == str(result)  # still the task id callers use
    assert result.get(timeout=30) == {"double": 8}
    assert result.ready() and result.successful() and result.state == "SUCCESS"


def test_get_raises_the_tasks_error_unless_propagate_is_false(workers: Any) -> None:
    failing = bad_isbn.delay("12")
    with pytest.raises(ValueError, match="not an ISBN: 12") as raised:
        failing.get(timeout=30)
    assert isinstance(raised.value, TaskError) and raised.value.task_id == failing.id
    assert "permanent error: ValueError: not an ISBN: 12" == failing.get(timeout=1, propagate=False)
    assert failing.failed()
    with pytest.raises(TaskError, match="the book was deleted"):
        refused.delay().get(timeout=30)


def test_get_times_out_while_the_task_waits(paused_workers: Any) -> None:
    result = double.delay(1)
    with pytest.raises(TimeoutError):
        result.get(timeout=0.5)
    assert result.state == "PENDING" and not result.ready()


def test_get_task_with_wait_answers_when_the_record_is_final(api: Any, workers: Any) -> None:
    task_id = slow.delay(2)
    status, body = api.get(f"/tasks/{task_id}?wait=20", user="admin")
    assert status == 200 and body["status"] == "SUCCESS" and body["result"] == "slept"  # not STARTED: it waited


def test_get_task_with_wait_answers_the_current_record_when_the_wait_is_over(api: Any, paused_workers: Any) -> None:
    task_id = double.delay(3)
    status, body = api.get(f"/tasks/{task_id}?wait=1", user="admin")
    assert status == 200 and body["status"] == "PENDING" and body["id"] == task_id


def test_a_stranger_waiting_on_a_task_is_refused_at_once(api: Any, paused_workers: Any) -> None:
    status, payload = api.post("/books", {"title": "Wait for me", "authors": ["Wait Author"]})
    assert status == 202
    task_id = payload["tasks"][0]
    started = time.monotonic()
    status, body = api.get(f"/tasks/{task_id}?wait=20", user="bob")
    assert status in (403, 404) and set(body) == {"error", "message", "fields"}
    assert time.monotonic() - started < 15  # refused before any wait, not after 20 s


def test_a_one_hour_countdown_waits_in_the_outbox_and_the_relay_sends_it_when_due(api: Any, workers: Any) -> None:
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


def test_the_relay_sends_an_eta_task_with_the_delay_it_has_left(paused_workers: Any) -> None:
    eta = datetime.now(UTC) + timedelta(hours=2)
    task_id = double.apply_async((1,), eta=eta)
    record = TaskRecord.get(task_id, consistent_read=True)
    assert abs(record.outbox_eta - eta.timestamp()) <= 1
    # 1 h 50 min later the relay finds it due and gives SQS the 10 minutes left, not 0.
    message = outbox.resend_of(record, eta.timestamp() - 600)
    assert 599 <= message.countdown <= 601
    assert outbox.resend_of(record, eta.timestamp() - 7200).countdown == 900  # never more than SQS allows


def test_a_naive_eta_is_utc_and_a_past_eta_runs_at_once(api: Any, workers: Any) -> None:
    task_id = double.apply_async((5,), eta=datetime.now(UTC).replace(tzinfo=None) - timedelta(minutes=5))
    assert final_record(api, task_id)["result"] == {"double": 10}


def _invocations(settings: Any, stop: threading.Event, threads: int, batch: int) -> list[threading.Thread]:
    """`threads` concurrent stand-ins for Lambda: receive, call the real SQS handler, delete
    what it did not report as failed (as an event source mapping with ReportBatchItemFailures)."""
    from chalice.local import LambdaContext

    from chalicelib.platform.aws import client
    from chalicelib.platform.sqs import queue_url
    from chalicelib.tasks.worker import consume
    from devtools.runtime.runner import lambda_record

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
    api: Any, paused_workers: Any, settings: Any
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


def _context(name: str, seconds: int = 60) -> Any:
    from chalice.local import LambdaContext

    return LambdaContext(name, 256, max_runtime_ms=seconds * 1000)


def _invoke(app_module: Any, name: str) -> Any:
    """The scheduled function as EventBridge (and the local runner) invokes it."""
    from devtools.runtime.runner import scheduled_event

    return getattr(app_module, name)(scheduled_event(name, "us-east-1"), _context(name))


def _schedules(api: Any) -> dict[str, dict[str, Any]]:
    status, body = api.get("/schedules", user="admin")
    assert status == 200, body
    return {row["name"]: row for row in body["schedules"]}


def test_the_relay_and_the_reconciler_are_periodic_tasks_listed_with_their_last_run(api: Any, app_module: Any) -> None:
    before = _schedules(api)
    assert before["outbox_relay"]["schedule"] == "rate(1 minute)"
    assert before["dead_letter_reconciler"]["schedule"] == "rate(5 minutes)"
    result = _invoke(app_module, "outbox_relay")
    assert result["complete"] == 1
    assert "records_marked" in _invoke(app_module, "dead_letter_reconciler")
    after = _schedules(api)
    for name in ("outbox_relay", "dead_letter_reconciler"):
        row = after[name]
        assert row["runs"] == before[name]["runs"] + 1 and row["last_status"] == "SUCCESS"
        assert row["last_run_at"] and row["last_finished_at"] and not row["running"] and row["last_error"] is None
    assert api.get("/schedules", user="alice")[0] == 403
    status, body = api.get("/queues", user="admin")  # operators see the schedules beside the queues too
    assert status == 200 and {row["name"]: row["runs"] for row in body["schedules"]} == {
        name: row["runs"] for name, row in after.items()
    }


def test_a_run_that_would_overlap_the_previous_one_is_skipped_and_recorded(api: Any, app_module: Any) -> None:
    from chalicelib.tasks.periodic import acquire, registered_periodic

    relay = registered_periodic()["outbox_relay"]
    before = _schedules(api)["outbox_relay"]
    assert acquire(relay, lease_seconds=60) is not None  # a run in progress (its function's 60 s)
    try:
        assert _invoke(app_module, "outbox_relay") == {"skipped": "the previous run still holds the lease"}
        row = _schedules(api)["outbox_relay"]
        assert row["running"] and row["skipped"] == before["skipped"] + 1 and row["last_skipped_at"]
    finally:
        from chalicelib.tasks.control import TaskControl

        TaskControl(relay.key).update(actions=[TaskControl.lease_until.remove(), TaskControl.lease_token.remove()])


def test_two_concurrent_runs_of_a_periodic_task_run_it_once() -> None:
    from chalicelib.tasks.control import TaskControl
    from chalicelib.tasks.periodic import PeriodicTask, run

    ran: list[float] = []

    def nightly() -> str:
        ran.append(time.time())
        time.sleep(1.5)
        return "done"

    periodic = PeriodicTask(f"tests_nightly_{time.time_ns()}", nightly, cron="0 3 * * *")
    results: list[Any] = []
    threads = [threading.Thread(target=lambda: results.append(run(periodic, _context("nightly")))) for _ in range(2)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert len(ran) == 1 and sorted(map(str, results)) == sorted(
        ["done", str({"skipped": "the previous run still holds the lease"})]
    )
    state = TaskControl.get(periodic.key, consistent_read=True)
    assert state.runs == 1 and state.skipped == 1 and state.last_status == "SUCCESS" and state.lease_until is None
    assert state.schedule == "cron(0 3 * * ? *)"
    assert run(periodic, _context("nightly")) == "done"  # the lease was released: the next run runs


def test_a_failed_periodic_run_is_recorded_and_its_lease_released() -> None:
    from chalicelib.tasks.control import TaskControl
    from chalicelib.tasks.periodic import PeriodicTask, run

    def broken() -> None:
        raise RuntimeError("the report store is down")

    periodic = PeriodicTask(f"tests_broken_{time.time_ns()}", broken, rate="1 hour")
    with pytest.raises(RuntimeError):
        run(periodic, _context("broken"))
    state = TaskControl.get(periodic.key, consistent_read=True)
    assert state.last_status == "FAILURE" and "the report store is down" in state.last_error
    assert state.lease_until is None
