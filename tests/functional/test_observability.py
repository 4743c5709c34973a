"""Structured JSON logs and Embedded Metric Format, as the Lambda handlers print them.

Messages are received from the real queues and handed to the very handler functions in
a Lambda-shaped event; everything they print is captured and parsed.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterator
from collections.abc import Set as AbstractSet
from typing import Any

import pytest
from helpers import b64, emf_metrics, eventually, jpeg_bytes, json_lines, unique_author, unique_email
from mailtools import seed_confirmed

from chalicelib.platform import observability
from chalicelib.tasks.decorator import task
from chalicelib.tasks.errors import PermanentTaskError, TransientTaskError


@task("tests.obs.flaky")
def flaky() -> None:
    raise TransientTaskError("the mail server is busy")


@task("tests.obs.broken")
def broken() -> None:
    raise PermanentTaskError("this can never work")


def _invoke(app_module: Any, handler: str, queue_name: str, wanted: AbstractSet[str]) -> None:
    """Receive messages until the `wanted` task ids were handled by `handler`, which sees no
    other message: the log and metric assertions are about these tasks alone. Other messages
    (an earlier test's, S3's test event) are set aside while this runs and then made visible
    again, for the workers to handle when they resume."""
    from chalice.local import LambdaContext

    from chalicelib.platform.aws import client
    from chalicelib.platform.sqs import delete_messages, queue_arn, queue_url
    from devtools.runtime.runner import lambda_record

    sqs, pending, url = client("sqs"), set(wanted), queue_url(queue_name)
    aside: list[str] = []

    def task_id(message: dict[str, Any]) -> Any:
        try:
            return json.loads(message["Body"]).get("id")
        except (ValueError, AttributeError):
            return None

    def step() -> bool:
        messages = sqs.receive_message(
            QueueUrl=url,
            MaxNumberOfMessages=10,
            WaitTimeSeconds=1,
            AttributeNames=["All"],
            MessageAttributeNames=["All"],
        ).get("Messages", [])
        mine = [m for m in messages if task_id(m) in pending]
        for other in (m for m in messages if m not in mine):
            sqs.change_message_visibility(QueueUrl=url, ReceiptHandle=other["ReceiptHandle"], VisibilityTimeout=120)
            aside.append(other["ReceiptHandle"])
        if mine:
            event = {"Records": [lambda_record(m, queue_arn(queue_name), "us-east-1") for m in mine]}
            # The deployed timeout (30 s), not chalice's 3 s default: a mail page needs 5 s left to start.
            response = getattr(app_module, handler)(event, LambdaContext(handler, 512, max_runtime_ms=30_000))
            kept = {f["itemIdentifier"] for f in response["batchItemFailures"]}
            done = [m["ReceiptHandle"] for m in mine if m["MessageId"] not in kept]
            delete_messages(queue_name, done)  # what Lambda does with a partial batch response
            pending.difference_update(task_id(m) for m in mine)
        return not pending

    try:
        eventually(step, timeout=30, interval=0, what=f"messages {wanted}")
    finally:
        for handle in aside:
            sqs.change_message_visibility(QueueUrl=url, ReceiptHandle=handle, VisibilityTimeout=0)


@pytest.fixture
def captured(capfd: pytest.CaptureFixture[str]) -> Iterator[Callable[[], list[dict[str, Any]]]]:
    """What the handlers print, as parsed JSON lines (stdout: where Lambda reads logs and EMF)."""
    import sys

    handler: Any = observability.logger.registered_handler
    original = handler.stream

    def read() -> list[dict[str, Any]]:
        handler.setStream(sys.stdout)  # the stream pytest captures during the test itself
        return json_lines(capfd.readouterr().out)

    yield read
    handler.stream = original


def test_cover_task_logs_json_with_task_and_book_ids_and_emits_emf(
    api: Any, paused_workers: Any, app_module: Any, settings: Any, captured: Any
) -> None:
    status, payload = api.post("/books", {"title": "Metrics", "authors": [unique_author()], "cover": b64(jpeg_bytes())})
    assert status == 202
    book_id, (task_id,) = payload["book"]["id"], payload["tasks"][:1]
    captured()  # forget what the API printed
    observability._cold_start = True  # as in a fresh Lambda container
    _invoke(app_module, "media_worker", settings.media.name, {task_id})
    lines = captured()

    records = [line for line in lines if "level" in line and line.get("task_id") == task_id]
    assert any(r["message"] == "task succeeded" for r in records)
    for record in records:
        assert {"level", "location", "message", "timestamp", "service"} <= set(record)
        assert record["book_id"] == book_id and record["task"] == "covers.resize"
    stray = [line for line in lines if "level" in line and "task_id" not in line]
    assert stray == [], "every log line of a task run carries the task id"

    metrics = emf_metrics(lines)
    succeeded = [m for m in metrics["TaskSucceeded"] if m["task"] == "covers.resize"]
    assert succeeded and succeeded[0]["_unit"] == "Count" and succeeded[0]["service"] == settings.app_name
    durations = [m for m in metrics["TaskDuration"] if m["task"] == "covers.resize"]
    assert durations and durations[0]["_unit"] == "Milliseconds" and durations[0]["TaskDuration"][0] > 0
    assert {m["_unit"] for m in metrics["ThumbnailBytes"]} == {"Bytes"}
    assert len(metrics["ThumbnailBytes"]) == 4  # 100 and 200 px, JPEG and WebP
    assert metrics["ColdStart"][0]["function"] == "media_worker"


def test_mail_fanout_emits_emails_sent(
    api: Any, paused_workers: Any, app_module: Any, settings: Any, captured: Any
) -> None:
    author, email = unique_author("Metered"), unique_email()
    seed_confirmed(author, email)
    status, payload = api.post("/books", {"title": "Counted", "authors": [author]})
    assert status == 202
    fanout_id = payload["tasks"][-1]
    captured()
    _invoke(app_module, "default_worker", settings.default.name, {fanout_id})
    lines = captured()
    assert any(line.get("task_id") == fanout_id for line in lines)
    (sent,) = emf_metrics(lines)["EmailsSent"]
    assert sent["EmailsSent"] == [1.0] and sent["_unit"] == "Count"


def test_retries_and_failures_are_counted_per_task(
    api: Any, paused_workers: Any, app_module: Any, settings: Any, captured: Any
) -> None:
    ids = {flaky.delay(), broken.delay()}
    captured()
    _invoke(app_module, "default_worker", settings.default.name, ids)
    lines = captured()
    metrics = emf_metrics(lines)
    assert any(m["task"] == "tests.obs.flaky" for m in metrics["TaskRetried"])
    assert any(m["task"] == "tests.obs.broken" for m in metrics["TaskFailed"])
    warning = next(line for line in lines if line.get("message") == "task failed; will retry")
    assert warning["level"] == "WARNING" and warning["error"].startswith("TransientTaskError")
    assert warning["retry_in_seconds"] >= 0 and warning["task"] == "tests.obs.flaky"
    error = next(line for line in lines if line.get("message") == "task failed for good")
    assert error["level"] == "ERROR" and "permanent error" in error["error"]
