"""Task records, retries with backoff, dead-letter queues, redrive, idempotency and eager mode.

All over real HTTP to the emulator; faults are injected at the emulator's endpoint.
"""

from __future__ import annotations

import json
import time
import uuid
from datetime import timedelta
from typing import TYPE_CHECKING, Any, cast

import pytest
from helpers import (
    b64,
    dead_lettered,
    eventually,
    final_record,
    jpeg_bytes,
    receive_own,
    task_id_of,
    task_record,
    unique_author,
    unique_email,
)

from chalicelib import app_tasks
from chalicelib.platform.config import get_settings
from chalicelib.platform.sqs import peek
from chalicelib.tasks.decorator import task
from chalicelib.tasks.envelope import Envelope
from chalicelib.tasks.errors import TransientTaskError
from chalicelib.tasks.registry import get_task

if TYPE_CHECKING:
    from chalicelib.tasks.result import AsyncResult


@task("tests.ok")
def ok_task(value: int) -> dict[str, int]:
    return {"double": value * 2}


@task("tests.always_transient", max_retries=2)
def always_transient() -> None:
    raise TransientTaskError("the backend is having a bad day")


RAN: list[str] = []


@task("tests.expires_quickly", expires=1)
def expires_quickly(marker: str) -> None:
    RAN.append(marker)


@task("tests.needs_a_minute", time_limit=60)
def needs_a_minute(marker: str) -> None:
    RAN.append(marker)


@task("tests.only_retries_key_errors", autoretry_for=(KeyError,))
def only_retries_key_errors() -> None:
    raise ValueError("not a key error")


def _dlq_reason(queue: Any, task_id: str) -> str | None:
    message = dead_lettered(queue.dlq_name).get(task_id)
    if message is None:
        return None
    return cast("str | None", message.get("MessageAttributes", {}).get("failure-reason", {}).get("StringValue", ""))


def _send_raw(aws: Any, queue_name: str, body: str) -> str:
    """Send `body` as it is; the message's id."""
    from chalicelib.platform.sqs import queue_url

    return str(aws("sqs").send_message(QueueUrl=queue_url(queue_name), MessageBody=body)["MessageId"])


def _email_tasks(api: Any, count: int) -> tuple[list[AsyncResult], list[str]]:
    """A new book and one `mail.new_book` task per reader (the per-recipient mail task)."""
    status, payload = api.post("/books", {"title": "Retry me", "authors": [unique_author("Flaky")]})
    assert status == 202
    book_id = payload["book"]["id"]
    emails = [unique_email("flaky") for _ in range(count)]
    ids = [app_tasks.send_new_book_email.delay(book_id, email) for email in emails]
    return ids, emails


def test_flaky_mail_sender_ends_in_success_or_dlq_never_lost(
    api: Any, workers: Any, faults: Any, aws: Any, settings: Any, mailbox: Any
) -> None:
    # The original scenario: the mail sender fails 3 times out of 4.
    faults.add(service="ses", action="SendEmail", code="Throttling", status=400, pattern=[True, True, True, False])
    ids, emails = _email_tasks(api, 6)
    records = [final_record(api, task_id) for task_id in ids]
    faults.clear()
    succeeded = [r for r in records if r["status"] == "SUCCESS"]
    failed = [r for r in records if r["status"] == "FAILURE"]
    assert len(succeeded) + len(failed) == len(ids)
    assert any(r["attempts"] > 1 for r in records), "retries must show in the records"
    for record in succeeded:
        assert len(mailbox.messages(to=record["args"][1])) == 1
    for record in failed:
        assert "retries exhausted" in record["error"] and record["traceback"]
        assert eventually(lambda r=record: _dlq_reason(settings.default, r["id"]), what="DLQ copy")
    assert sum(len(mailbox.messages(to=e)) for e in emails) == len(succeeded)


def test_permanent_error_fails_at_once_into_the_dlq(
    api: Any, workers: Any, faults: Any, aws: Any, settings: Any
) -> None:
    faults.add(
        service="ses", action="SendEmail", code="MessageRejected", status=400, message="Email address is not verified"
    )
    (task_id,), _ = _email_tasks(api, 1)
    record = final_record(api, task_id)
    assert record["status"] == "FAILURE" and record["attempts"] == 1
    assert record["error"].startswith("permanent error: MessageRejected") and "not verified" in record["error"]
    assert "Traceback" in record["traceback"]
    reason = eventually(lambda: _dlq_reason(settings.default, task_id), what="DLQ copy")
    assert "MessageRejected" in reason


def test_transient_errors_retry_with_backoff_then_dead_letter(api: Any, workers: Any, aws: Any, settings: Any) -> None:
    task_id = always_transient.delay()
    record = final_record(api, task_id)
    assert record["status"] == "FAILURE"
    assert record["attempts"] == 3  # max_retries=2
    assert record["error"] == "retries exhausted after 3 attempts: TransientTaskError: the backend is having a bad day"
    assert eventually(lambda: _dlq_reason(settings.default, task_id), what="DLQ copy").startswith("retries exhausted")
    started, finished = record["started_at"], record["finished_at"]
    assert started <= finished


@pytest.mark.parametrize(
    ("body", "reason"),
    [
        ("this is not json", "poison message: body is not JSON"),
        (json.dumps({"v": 99, "id": "ID", "task": "tests.ok"}), "unsupported envelope version 99"),
        (json.dumps({"v": 1, "id": "ID", "task": "no.such.task"}), "unknown task 'no.such.task'"),
    ],
)
def test_poison_messages_go_to_the_dlq_with_a_failure_record(
    api: Any, workers: Any, aws: Any, settings: Any, body: Any, reason: Any
) -> None:
    task_id = f"poison-{uuid.uuid4()}"
    _send_raw(aws, settings.default.name, body.replace("ID", task_id))
    expected_id = task_id if "ID" in body else None

    def in_dlq() -> dict[str, Any] | None:
        for message in peek(settings.default.dlq_name):
            if message["Body"] == body.replace("ID", task_id):
                return message
        return None

    message = eventually(in_dlq, what="poison message in the DLQ")
    assert reason in message["MessageAttributes"]["failure-reason"]["StringValue"]
    if expected_id:
        record = final_record(api, expected_id)
        assert record["status"] == "FAILURE" and reason in record["error"]
    else:
        # The worker dead-letters the message first, then writes the record: wait for the record too.
        def recorded() -> bool:
            status, listed = api.get("/tasks?status=FAILURE&name=%3Cunreadable%3E&limit=100", user="admin")
            assert status == 200
            return any(reason in r["error"] for r in listed["items"])

        eventually(recorded, what="the unreadable message's FAILURE record")


def test_poison_message_travels_to_the_dlq_and_back_by_redrive(api: Any, workers: Any, aws: Any, settings: Any) -> None:
    name = f"tests.late_{uuid.uuid4().hex[:8]}"
    env = Envelope(task_id=str(uuid.uuid4()), task=name, args=[21])
    _send_raw(aws, settings.default.name, env.encode())
    record = final_record(api, env.task_id)
    assert record["status"] == "FAILURE" and "unknown task" in record["error"]
    assert eventually(lambda: _dlq_reason(settings.default, env.task_id), what="message in DLQ")

    task(name)(lambda value: {"late": value * 2})  # the fix is deployed

    status, result = api.post("/queues/default/redrive", user="admin")
    assert (
        status == 202
        and result["queue"] == "default"
        and result["method"] in ("StartMessageMoveTask", "receive-send-delete")
    )
    record = eventually(
        lambda: (r := task_record(api, env.task_id)) and r["status"] == "SUCCESS" and r, what="redriven"
    )
    assert record["result"] == {"late": 42}
    assert _dlq_reason(settings.default, env.task_id) is None


def test_redrive_cli_moves_messages_back(paused_workers: Any, aws: Any, settings: Any, capsys: Any) -> None:
    from chalicelib.ops.queues import depth
    from chalicelib.platform.sqs import dead_letter
    from devtools import ops

    marker = Envelope(task_id=str(uuid.uuid4()), task="tests.ok", args=[1]).encode()
    dead_letter(settings.media, marker, "for the CLI test")
    before = depth(settings.media.dlq_name).visible
    assert before >= 1
    assert ops.main(["redrive", "media"]) == 0
    out = json.loads(capsys.readouterr().out)
    assert out["queue"] == "media" and out.get("moved", before) >= 1
    url = aws("sqs").get_queue_url(QueueName=settings.media.name)["QueueUrl"]
    received = eventually(
        lambda: receive_own(aws("sqs"), url, lambda m: m["Body"] == marker, WaitTimeSeconds=1),
        timeout=15,
        what="the redriven message",
    )
    assert [m["Body"] for m in received] == [marker]
    aws("sqs").delete_message(QueueUrl=url, ReceiptHandle=received[0]["ReceiptHandle"])
    assert depth(settings.media.dlq_name).visible == 0


def test_duplicate_delivery_does_the_work_once(api: Any, workers: Any, aws: Any, settings: Any, mailbox: Any) -> None:
    status, payload = api.post("/books", {"title": "Once only", "authors": [unique_author()]})
    assert status == 202
    email = unique_email("dup")
    env = Envelope(task_id=str(uuid.uuid4()), task="mail.new_book", args=[payload["book"]["id"], email])
    # SQS delivers at least once: the same message twice. Whether each copy went is asked of the
    # consumers by message id: other tests' retries may sit in flight in this queue meanwhile.
    copies = [_send_raw(aws, settings.default.name, env.encode()) for _ in range(2)]
    record = final_record(api, env.task_id)
    assert record["status"] == "SUCCESS" and record["attempts"] == 1
    eventually(lambda: workers.deleted(*copies), timeout=60, what="both copies consumed")
    assert len(mailbox.messages(to=email)) == 1
    late = _send_raw(aws, settings.default.name, env.encode())  # a late duplicate, after success
    eventually(lambda: workers.deleted(late), timeout=30, what="late copy consumed")
    assert len(mailbox.messages(to=email)) == 1
    assert task_record(api, env.task_id)["attempts"] == 1


def _queued(name: str) -> int:
    from chalicelib.ops.queues import depth

    d = depth(name)
    return d.visible + d.in_flight + d.delayed


def _one_good_one_failing_batch(aws: Any, settings: Any) -> tuple[dict[str, Any], Envelope, Envelope]:
    """Receive a Lambda-shaped event holding a task that succeeds and one that must retry."""
    from chalicelib.platform.sqs import queue_arn, queue_url
    from devtools.runtime.runner import lambda_record

    url = queue_url(settings.default.name)
    good = Envelope(task_id=str(uuid.uuid4()), task="tests.ok", args=[4])
    bad = Envelope(task_id=str(uuid.uuid4()), task="tests.always_transient")
    aws("sqs").send_message_batch(
        QueueUrl=url, Entries=[{"Id": "g", "MessageBody": good.encode()}, {"Id": "b", "MessageBody": bad.encode()}]
    )
    ours = {good.task_id, bad.task_id}
    messages: list[dict[str, Any]] = []
    for _ in range(5):
        messages += receive_own(
            aws("sqs"), url, lambda m: task_id_of(m) in ours, AttributeNames=["All"], WaitTimeSeconds=1
        )
        if len(messages) >= 2:
            break
    assert {task_id_of(m) for m in messages} == ours
    event = {"Records": [lambda_record(m, queue_arn(settings.default.name), settings.region) for m in messages]}
    return event, good, bad


def _still_queued(aws: Any, url: str, receipt_handle: str) -> bool:
    """True while the message of `receipt_handle` was not deleted (its visibility can change)."""
    from botocore.exceptions import ClientError

    try:
        aws("sqs").change_message_visibility(QueueUrl=url, ReceiptHandle=receipt_handle, VisibilityTimeout=30)
    except ClientError:
        return False
    return True


def _returns_after_backoff(aws: Any, url: str, task_id: str) -> None:
    def mine() -> list[dict[str, Any]]:  # another test's message in this process's queue is not the subject
        return receive_own(aws("sqs"), url, lambda m: task_id_of(m) == task_id, WaitTimeSeconds=1)

    returned = eventually(mine, timeout=15, what="the failed message back after its backoff")
    assert [json.loads(m["Body"])["id"] for m in returned] == [task_id]
    aws("sqs").delete_message(QueueUrl=url, ReceiptHandle=returned[0]["ReceiptHandle"])


def test_handler_reports_only_the_failed_message_and_deletes_nothing(
    paused_workers: Any, app_module: Any, aws: Any, settings: Any
) -> None:
    """ReportBatchItemFailures (the default): no invocation error, Lambda deletes the rest."""
    from chalice.local import LambdaContext

    from chalicelib.platform.sqs import queue_url
    from chalicelib.tasks.models import TaskRecord

    assert settings.report_batch_item_failures
    event, good, bad = _one_good_one_failing_batch(aws, settings)
    by_task = {json.loads(r["body"])["id"]: r for r in event["Records"]}
    response = app_module.default_worker(event, LambdaContext("default_worker", 512))

    assert response == {"batchItemFailures": [{"itemIdentifier": by_task[bad.task_id]["messageId"]}]}
    assert TaskRecord.get(good.task_id).status == "SUCCESS"
    assert TaskRecord.get(bad.task_id).status == "RETRY"
    url = queue_url(settings.default.name)
    # The handler deleted nothing: the handled message is still there until Lambda deletes it.
    assert _still_queued(aws, url, by_task[good.task_id]["receiptHandle"])
    for record in event["Records"]:  # what Lambda does with that response
        if record["messageId"] != by_task[bad.task_id]["messageId"]:
            aws("sqs").delete_message(QueueUrl=url, ReceiptHandle=record["receiptHandle"])
    _returns_after_backoff(aws, url, bad.task_id)


def test_legacy_handler_deletes_what_it_handled_and_raises_for_the_rest(
    paused_workers: Any, app_module: Any, aws: Any, settings: Any, monkeypatch: Any
) -> None:
    """REPORT_BATCH_ITEM_FAILURES=false, for a mapping without the response type."""
    from chalice.local import LambdaContext

    from chalicelib.platform.sqs import queue_url
    from chalicelib.tasks.models import TaskRecord
    from chalicelib.tasks.worker import BatchIncomplete

    event, good, bad = _one_good_one_failing_batch(aws, settings)
    monkeypatch.setenv("REPORT_BATCH_ITEM_FAILURES", "false")
    get_settings.cache_clear()
    try:
        with pytest.raises(BatchIncomplete, match="1 of"):
            app_module.default_worker(event, LambdaContext("default_worker", 512))
    finally:
        monkeypatch.delenv("REPORT_BATCH_ITEM_FAILURES")
        get_settings.cache_clear()

    assert TaskRecord.get(good.task_id).status == "SUCCESS"
    assert TaskRecord.get(bad.task_id).status == "RETRY"
    url = queue_url(settings.default.name)
    by_task = {json.loads(r["body"])["id"]: r for r in event["Records"]}
    assert not _still_queued(aws, url, by_task[good.task_id]["receiptHandle"])  # the handler deleted it
    _returns_after_backoff(aws, url, bad.task_id)


def test_local_runner_deletes_on_return_and_keeps_on_raise(paused_workers: Any, aws: Any) -> None:
    """The runner mimics a mapping without ReportBatchItemFailures, exactly."""
    import types

    from chalice.app import Chalice

    from chalicelib.ops.queues import depth
    from devtools.runtime.runner import EventSourceRunner

    name = f"{get_settings().default.name}-runner-{uuid.uuid4().hex[:6]}"
    url = aws("sqs").create_queue(QueueName=name, Attributes={"VisibilityTimeout": "30"})["QueueUrl"]
    seen: list[str] = []
    app = Chalice("runner-test")

    @app.on_sqs_message(queue=name, batch_size=5, maximum_concurrency=2)
    def handler(event: Any) -> None:
        bodies = [r.body for r in event]
        seen.extend(bodies)
        if "boom" in bodies:
            raise RuntimeError("the whole batch fails")

    module = types.SimpleNamespace(app=app, handler=handler)
    aws("sqs").send_message(QueueUrl=url, MessageBody="fine")
    with EventSourceRunner(module, wait_seconds=1) as runner:
        eventually(lambda: "fine" in seen, what="first batch")
        eventually(lambda: depth(name).in_flight == 0 and depth(name).visible == 0, what="deleted after success")
        aws("sqs").send_message(QueueUrl=url, MessageBody="boom")
        eventually(lambda: "boom" in seen, what="failing batch")
        stats = runner.pollers["handler"].stats
        eventually(lambda: stats.errors >= 1, what="error counted")
        assert depth(name).in_flight == 1  # kept: back after the visibility timeout
    assert runner.pollers["handler"].concurrency == 2
    aws("sqs").delete_queue(QueueUrl=url)


def test_task_list_filters_by_status_and_name_with_pagination(api: Any, workers: Any) -> None:
    ids = [ok_task.delay(i) for i in range(5)]
    for task_id in ids:
        assert final_record(api, task_id)["status"] == "SUCCESS"
    collected, cursor = [], None
    while True:
        query = "/tasks?status=SUCCESS&name=tests.ok&limit=2" + (f"&cursor={cursor}" if cursor else "")
        status, page = api.get(query, user="admin")
        assert status == 200
        assert all(r["status"] == "SUCCESS" and r["name"] == "tests.ok" for r in page["items"])
        collected += [r["id"] for r in page["items"]]
        cursor = page["next_cursor"]
        if not cursor:
            break
    assert set(ids) <= set(collected)
    status, by_name = api.get("/tasks?name=tests.ok&limit=100", user="admin")
    assert set(ids) <= {r["id"] for r in by_name["items"]}
    assert api.get("/tasks?status=DONE", user="admin")[0] == 422
    assert api.get("/tasks?cursor=garbage", user="admin")[0] == 400  # a cursor the API did not make


def test_records_expire_by_ttl(api: Any, aws: Any, settings: Any) -> None:
    from chalicelib.tasks.models import TaskRecord

    task_id = ok_task.delay(1)
    record = TaskRecord.get(task_id)
    days = (record.expires_at - record.created_at).total_seconds() / 86400
    assert abs(days - settings.task_ttl_days) < 0.01
    ttl = aws("dynamodb").describe_time_to_live(TableName=settings.tasks_table)["TimeToLiveDescription"]
    assert ttl["TimeToLiveStatus"] in ("ENABLED", "ENABLING") and ttl["AttributeName"] == "expires_at"


@pytest.fixture
def eager(monkeypatch: pytest.MonkeyPatch) -> Any:
    monkeypatch.setenv("TASKS_EAGER", "1")
    get_settings.cache_clear()
    yield get_settings()
    monkeypatch.delenv("TASKS_EAGER")
    get_settings.cache_clear()


def test_eager_mode_runs_tasks_inline_with_records(
    eager: Any, paused_workers: Any, api: Any, aws: Any, settings: Any, mailbox: Any
) -> None:
    assert eager.tasks_eager
    author, email = unique_author("Eager"), unique_email("eager")
    api.post(f"/authors/{author.replace(' ', '%20')}/subscribers", {"email": email})
    before = [_queued(name) for name in (settings.media.name, settings.default.name)]
    status, payload = api.post("/books", {"title": "Right now", "authors": [author], "cover": b64(jpeg_bytes())})
    assert status == 202
    assert payload["book"]["cover_status"] == "ready"  # resized before the response
    assert len(mailbox.messages(to=email)) == 1
    for task_id in payload["tasks"]:
        record = task_record(api, task_id)
        assert record["status"] == "SUCCESS" and record["attempts"] == 1
    assert [_queued(name) for name in (settings.media.name, settings.default.name)] == before  # nothing sent


def test_eager_mode_retries_and_records_failure(eager: Any, paused_workers: Any, api: Any) -> None:
    task_id = get_task("tests.always_transient").delay()
    record = task_record(api, task_id)
    assert record["status"] == "FAILURE" and record["attempts"] == 3
    assert record["error"].startswith("retries exhausted after 3 attempts")


def _reconcile(chalice_client: Any) -> dict[str, int]:
    """Invoke the scheduled Lambda handler as EventBridge would."""
    event = chalice_client.events.generate_cw_event(
        source="aws.events", detail_type="Scheduled Event", detail={}, resources=[]
    )
    return cast("dict[str, int]", chalice_client.lambda_.invoke("dead_letter_reconciler", event).payload)


def test_reconciler_marks_failure_for_messages_the_redrive_policy_moved(
    api: Any, paused_workers: Any, chalice_client: Any, aws: Any, settings: Any
) -> None:
    from chalicelib.tasks import records

    def stranded(lease_seconds: int) -> Envelope:
        """A task a worker claimed and never finished, whose message SQS moved to the DLQ."""
        env = Envelope(task_id=str(uuid.uuid4()), task="tests.ok", args=[1])
        records.create_pending(env, "default")
        assert records.claim(env, "default", lease_seconds).outcome == "claimed"
        _send_raw(aws, settings.default.dlq_name, env.encode())  # the redrive policy keeps the body as sent
        return env

    timed_out = stranded(lease_seconds=-1)  # the attempt's lease ran out: a Lambda timeout or crash
    running = stranded(lease_seconds=600)  # still under a live lease: another worker owns it
    succeeded = Envelope(task_id=str(uuid.uuid4()), task="tests.ok", args=[2])
    records.create_pending(succeeded, "default")
    claim = records.claim(succeeded, "default", 60)
    records.mark_success(succeeded.task_id, cast("str", claim.token), {"double": 4})
    _send_raw(aws, settings.default.dlq_name, succeeded.encode())  # a duplicate that outlived its twin

    result = _reconcile(chalice_client)
    assert result["records_marked"] >= 1 and result["dead_lettered"] >= 3

    record = task_record(api, timed_out.task_id)
    assert record["status"] == "FAILURE"
    assert "redrive policy after 5 receives" in record["error"]
    assert task_record(api, running.task_id)["status"] == "STARTED"
    assert task_record(api, succeeded.task_id)["status"] == "SUCCESS"
    # The messages stay in the DLQ for redrive; a second pass changes nothing.
    dlq = dead_lettered(settings.default.dlq_name)
    assert {timed_out.task_id, running.task_id, succeeded.task_id} <= set(dlq)
    before = task_record(api, timed_out.task_id)["updated_at"]
    _reconcile(chalice_client)
    assert task_record(api, timed_out.task_id)["updated_at"] == before


def test_reconciler_keeps_the_last_error_of_a_retried_task(
    api: Any, paused_workers: Any, chalice_client: Any, aws: Any, settings: Any
) -> None:
    from chalicelib.tasks import records

    env = Envelope(task_id=str(uuid.uuid4()), task="tests.ok", args=[3])
    records.create_pending(env, "default")
    claim = records.claim(env, "default", 60)
    records.mark_retry(env.task_id, cast("str", claim.token), "TimeoutError: SES did not answer", "Traceback …")
    _send_raw(aws, settings.default.dlq_name, env.encode())

    _reconcile(chalice_client)
    record = task_record(api, env.task_id)
    assert record["status"] == "FAILURE"
    assert record["error"].endswith("last error: TimeoutError: SES did not answer")
    assert record["traceback"] == "Traceback …"


def _event_for(aws: Any, settings: Any, env: Envelope, send: bool = True) -> dict[str, Any]:
    """Send `env` to the default queue (unless it is there already) and receive it as a Lambda event."""
    from chalicelib.platform.sqs import queue_arn, queue_url
    from devtools.runtime.runner import lambda_record

    url = queue_url(settings.default.name)
    if send:
        aws("sqs").send_message(QueueUrl=url, MessageBody=env.encode())

    def mine() -> list[dict[str, Any]]:
        return receive_own(aws("sqs"), url, lambda m: task_id_of(m) == env.task_id, AttributeNames=["All"])

    (message,) = eventually(mine, timeout=20, what=f"message {env.task_id}")
    return {"Records": [lambda_record(message, queue_arn(settings.default.name), settings.region)]}


def test_expired_message_is_not_run_and_says_why(paused_workers: Any, app_module: Any, aws: Any, settings: Any) -> None:
    from chalice.local import LambdaContext

    marker = str(uuid.uuid4())
    env = Envelope(task_id=str(uuid.uuid4()), task="tests.expires_quickly", args=[marker])
    event = _event_for(aws, settings, env)
    sent = int(event["Records"][0]["attributes"]["SentTimestamp"]) / 1000
    eventually(lambda: time.time() - sent > 1.5, timeout=5, what="the task to expire")

    response = app_module.default_worker(event, LambdaContext("default_worker", 512))

    assert response == {"batchItemFailures": []}  # handled: the message goes, nothing to retry
    assert marker not in RAN
    from chalicelib.platform.sqs import queue_url
    from chalicelib.tasks.models import TaskRecord

    aws("sqs").delete_message(  # as the event source mapping deletes a message reported handled
        QueueUrl=queue_url(settings.default.name), ReceiptHandle=event["Records"][0]["receiptHandle"]
    )

    record = TaskRecord.get(env.task_id)
    assert record.status == "FAILURE" and record.error.startswith("expired: sent")


def test_task_is_not_started_with_less_time_left_than_its_time_limit(
    paused_workers: Any, app_module: Any, aws: Any, settings: Any
) -> None:
    from chalice.local import LambdaContext

    marker = str(uuid.uuid4())
    env = Envelope(task_id=str(uuid.uuid4()), task="tests.needs_a_minute", args=[marker])
    event = _event_for(aws, settings, env)

    short = LambdaContext("default_worker", 512, max_runtime_ms=30_000)
    from chalicelib.platform.sqs import queue_url

    for _ in range(settings.default.max_receive_count + 1):  # more times than the DLQ allows receives
        response = app_module.default_worker(event, short)
        assert response == {"batchItemFailures": []}  # handed on as a new message: this one goes
        assert marker not in RAN
        aws("sqs").delete_message(  # as the event source mapping deletes a message reported handled
            QueueUrl=queue_url(settings.default.name), ReceiptHandle=event["Records"][0]["receiptHandle"]
        )
        event = _event_for(aws, settings, env, send=False)  # the new message, due after a second
        assert event["Records"][0]["attributes"]["ApproximateReceiveCount"] == "1"  # no receive spent

    response = app_module.default_worker(event, LambdaContext("default_worker", 512, max_runtime_ms=120_000))
    assert response == {"batchItemFailures": []} and marker in RAN
    aws("sqs").delete_message(
        QueueUrl=queue_url(settings.default.name), ReceiptHandle=event["Records"][0]["receiptHandle"]
    )


def test_error_outside_autoretry_for_fails_at_once(api: Any, workers: Any) -> None:
    task_id = get_task("tests.only_retries_key_errors").delay()
    record = final_record(api, task_id)
    assert record["status"] == "FAILURE" and record["attempts"] == 1
    assert record["error"].startswith("not retried (not in autoretry_for): ValueError")


def test_a_status_listing_filtered_by_a_rare_name_answers_after_bounded_reads_with_a_cursor(
    api: Any, monkeypatch: Any
) -> None:
    """GIVEN many newer records of other names WHEN listing one status filtered by a rare name THEN a
    request reads a bounded number of index pages and answers with what matched and a cursor, and
    following the cursors finds every match in order (it used to read on until `limit` matched:
    past API Gateway's 29 s once the status held thousands of records)."""
    from chalicelib.ops import task_query
    from chalicelib.platform.dynamodb import utcnow
    from chalicelib.tasks.models import TaskRecord

    name = f"tests.rare_{uuid.uuid4().hex[:8]}"
    now = utcnow()
    rare = [f"rare-{uuid.uuid4().hex}" for _ in range(2)]
    for task_id in rare:
        TaskRecord(task_id, name=name, status="SUCCESS", queue="default", created_at=now).save()
    for i in range(30):  # newer, of another name: read first, newest first
        later = now.replace(microsecond=0) + timedelta(seconds=i + 1)
        TaskRecord(
            f"other-{uuid.uuid4().hex}", name="tests.other", status="SUCCESS", queue="default", created_at=later
        ).save()
    monkeypatch.setattr(task_query, "FILTERED_PAGE_SIZE", 5, raising=False)
    monkeypatch.setattr(task_query, "FILTERED_READS", 2, raising=False)
    status, first = api.get(f"/tasks?status=SUCCESS&name={name}&limit=2", user="admin")
    assert status == 200, first
    assert first["items"] == [] and first["next_cursor"], "a request read past its bound"
    found: list[Any]
    found, cursor, requests_made = [], first["next_cursor"], 1
    while cursor and len(found) < 2 and requests_made < 50:
        status, page = api.get(f"/tasks?status=SUCCESS&name={name}&limit=2&cursor={cursor}", user="admin")
        assert status == 200, page
        assert all(item["name"] == name for item in page["items"])
        found += [item["id"] for item in page["items"]]
        cursor, requests_made = page["next_cursor"], requests_made + 1
    assert sorted(found) == sorted(rare)
