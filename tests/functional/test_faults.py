"""Outages injected at the emulator's endpoint: tasks retry and finish, or end in the DLQ; nothing is lost."""

from __future__ import annotations

from typing import Any

from helpers import b64, dead_lettered, eventually, final_record, jpeg_bytes, unique_author, unique_email
from mailtools import seed_confirmed

from chalicelib.tasks.decorator import task


@task("tests.faults.echo")
def echo(value: int) -> dict[str, int]:
    return {"value": value}


def _dead_lettered_ids(settings: Any) -> set[str]:
    return {task_id for queue in settings.queues.values() for task_id in dead_lettered(queue.dlq_name)}


def test_ses_outage_for_a_while_then_mail_goes_out(api: Any, workers: Any, faults: Any, mailbox: Any) -> None:
    author, email = unique_author("Outage"), unique_email("outage")
    seed_confirmed(author, email)
    faults.add(service="ses", action="SendBulkEmail", code="ServiceUnavailable", status=503, times=2)
    status, _ = api.post("/books", {"title": "Patience", "authors": [author]})
    assert status == 202
    messages = eventually(lambda: mailbox.messages(to=email), timeout=60, what="mail after the outage")
    assert len(messages) == 1
    failed_calls = sum(f["failed"] for f in faults.listing())
    assert failed_calls == 2


def test_s3_outage_while_resizing_is_retried(api: Any, workers: Any, faults: Any) -> None:
    status, payload = api.post("/books", {"title": "Slow disk", "authors": [unique_author()]})
    book_id = payload["book"]["id"]
    # Every S3 GET fails for a while: botocore's three tries, then a task retry, then recovery.
    faults.add(service="s3", action="GET", code="ServiceUnavailable", status=503, times=4)
    status, replaced = api.put(f"/books/{book_id}/cover", raw=jpeg_bytes(), content_type="image/jpeg")
    assert status == 202
    record = final_record(api, replaced["tasks"][0], timeout=90)
    assert record["status"] == "SUCCESS" and record["attempts"] >= 2
    assert api.get(f"/books/{book_id}", user=None)[1]["cover_status"] == "ready"


def test_s3_outage_at_upload_answers_503_and_saves_nothing(api: Any, faults: Any) -> None:
    author = unique_author("NoDisk")
    faults.add(service="s3", action="PUT", code="ServiceUnavailable", status=503)
    status, body = api.post("/books", {"title": "Lost?", "authors": [author], "cover": b64(jpeg_bytes())})
    faults.clear()
    assert status == 503 and body["error"] == "ServiceUnavailable"
    assert api.get(f"/books?author={author.replace(' ', '%20')}", user=None)[1]["items"] == []


def test_dynamodb_throttling_in_the_worker_is_retried(api: Any, workers: Any, faults: Any) -> None:
    faults.add(service="dynamodb", action="UpdateItem", code="ThrottlingException", status=400, times=3)
    task_id = echo.delay(7)
    record = final_record(api, task_id, timeout=90)
    assert record["status"] == "SUCCESS" and record["result"] == {"value": 7}


def test_dynamodb_throttling_at_the_api_is_503(api: Any, faults: Any) -> None:
    # The book, its index rows and its task records are written in one TransactWriteItems.
    faults.add(service="dynamodb", action="TransactWriteItems", code="ThrottlingException", status=400)
    status, body = api.post("/books", {"title": "Busy", "authors": [unique_author()]})
    faults.clear()
    assert status == 503 and body["error"] == "ServiceUnavailable"


def test_every_dispatched_task_reaches_success_or_the_dlq(api: Any, workers: Any, faults: Any, settings: Any) -> None:
    """With SES, DynamoDB and SQS flaky at once, count every task to an end."""
    author = unique_author("Chaos")
    emails = [unique_email("chaos") for _ in range(4)]
    for email in emails:
        seed_confirmed(author, email)
    faults.add(service="ses", action="SendBulkEmail", code="Throttling", status=400, pattern=[True, False, True])
    faults.add(service="dynamodb", action="UpdateItem", code="ThrottlingException", status=400, pattern=[True, False])
    faults.add(
        service="sqs", action="ChangeMessageVisibility", code="ServiceUnavailable", status=503, pattern=[True, False]
    )
    ids = [echo.delay(i) for i in range(10)]
    status, payload = api.post("/books", {"title": "Chaos", "authors": [author], "cover": b64(jpeg_bytes())})
    assert status == 202
    ids += payload["tasks"]
    notify = final_record(api, payload["tasks"][-1], timeout=90)
    if notify["status"] == "SUCCESS" and notify["result"].get("next"):
        ids.append(notify["result"]["next"])  # a continuation page, when the first page handed off
    records = {task_id: final_record(api, task_id, timeout=120) for task_id in ids}
    faults.clear()
    failed = {task_id for task_id, r in records.items() if r["status"] == "FAILURE"}
    if failed:
        assert failed <= eventually(lambda: (found := _dead_lettered_ids(settings)) >= failed and found)
    succeeded = {task_id for task_id, r in records.items() if r["status"] == "SUCCESS"}
    assert succeeded | failed == set(ids)
    assert len(ids) >= 12
