"""Data integrity: one transaction per book write, the transactional outbox and its relay,
Idempotency-Key, the pending state of a replaced cover, no upscaling, and the newest-first
task listing. Over HTTP to the emulator, with faults injected at its endpoint.
"""

from __future__ import annotations

import json
import time
import uuid
from collections.abc import Iterator
from datetime import timedelta
from typing import Any, cast
from urllib.parse import quote

import pytest
from helpers import (
    b64,
    eventually,
    final_record,
    jpeg_bytes,
    listed,
    made_book,
    post_with_key,
    task_record,
    unique_author,
    unique_email,
)

from chalicelib.platform.config import get_settings
from chalicelib.platform.dynamodb import utcnow
from chalicelib.tasks import records
from chalicelib.tasks.decorator import task
from chalicelib.tasks.envelope import Envelope
from chalicelib.tasks.models import TaskRecord


@task("tests.integrity.noop")
def noop(value: int) -> dict[str, int]:
    return {"value": value}


def _put_cover_with_key(api: Any, book_id: str, data: bytes, key: str) -> tuple[int, Any]:
    headers = {**api.headers("alice", "image/jpeg"), "Idempotency-Key": key}
    response = api.request("put", f"/books/{book_id}/cover", headers, data)
    return response.status_code, response.json()


@pytest.fixture
def relay_soon(monkeypatch: pytest.MonkeyPatch) -> Iterator[Any]:
    """Tasks become due for the relay after 1 s instead of a minute.

    The settings are read again at once, here: the Chalice test client patches the process
    environment with the `dev` stage's variables during each request, and settings first
    read inside that window would keep the deployed values for the rest of the session.
    """
    monkeypatch.setenv("OUTBOX_RELAY_AFTER_SECONDS", "1")
    get_settings.cache_clear()
    yield get_settings()
    monkeypatch.delenv("OUTBOX_RELAY_AFTER_SECONDS")
    get_settings.cache_clear()
    get_settings()


def _run_relay(app_module: Any) -> dict[str, int]:
    """Invoke the scheduled handler as the local runner does (EventBridge event, 60 s context)."""
    from chalice.local import LambdaContext

    from devtools.runtime.runner import scheduled_event

    context = LambdaContext("outbox_relay", 256, max_runtime_ms=60_000)
    return cast("dict[str, int]", app_module.outbox_relay(scheduled_event("outbox_relay", "us-east-1"), context))


def test_a_failed_update_transaction_changes_nothing(api: Any, faults: Any) -> None:
    old, new = unique_author("Old"), unique_author("New")
    book = made_book(api, old, "Integrity")["book"]
    faults.add(service="dynamodb", action="TransactWriteItems", code="ServiceUnavailable", status=503)
    status, body = api.put(f"/books/{book['id']}", {"authors": [new], "title": "Changed"})
    faults.clear()
    assert status == 503 and body["error"] == "ServiceUnavailable"
    assert listed(api, old) == [book["id"]] and listed(api, new) == []
    assert api.get(f"/books/{book['id']}", user=None)[1]["title"] == "Integrity"


def test_delete_removes_book_and_index_rows_together(api: Any, faults: Any) -> None:
    author = unique_author("Gone")
    book = made_book(api, author, "Integrity", cover=b64(jpeg_bytes(300, 300)))["book"]
    faults.add(service="dynamodb", action="TransactWriteItems", code="ServiceUnavailable", status=503)
    assert api.delete(f"/books/{book['id']}")[0] == 503
    faults.clear()
    assert listed(api, author) == [book["id"]]
    assert api.delete(f"/books/{book['id']}")[0] == 204
    assert listed(api, author) == [] and api.get(f"/books/{book['id']}", user=None)[0] == 404


def test_a_failed_create_transaction_saves_nothing(api: Any, faults: Any, aws: Any, settings: Any) -> None:
    author = unique_author("NotSaved")
    before = {o["Key"] for o in aws("s3").list_objects_v2(Bucket=settings.media_bucket).get("Contents", [])}
    faults.add(service="dynamodb", action="TransactWriteItems", code="ServiceUnavailable", status=503)
    status, body = api.post("/books", {"title": "Half?", "authors": [author], "cover": b64(jpeg_bytes(200, 200))})
    faults.clear()
    assert status == 503 and body["error"] == "ServiceUnavailable"
    assert listed(api, author) == []
    after = {o["Key"] for o in aws("s3").list_objects_v2(Bucket=settings.media_bucket).get("Contents", [])}
    assert not {k for k in after - before if k.endswith("/original")}  # the uploaded original was removed


def test_sqs_outage_answers_202_and_the_relay_finishes_the_work(
    api: Any, workers: Any, faults: Any, mailbox: Any, app_module: Any, relay_soon: Any
) -> None:
    author, email = unique_author("Outbox"), unique_email("outbox")
    assert api.post(f"/authors/{quote(author)}/subscribers", {"email": email})[0] == 201
    body = {"title": "Stranded?", "authors": [author], "cover": b64(jpeg_bytes(400, 300))}
    key = f"create-{uuid.uuid4()}"
    faults.add(service="sqs", action="SendMessageBatch", code="ServiceUnavailable", status=503)
    status, first = post_with_key(api, body, key)
    assert status == 202, first  # the book, its index rows and its tasks are committed
    book_id = first["book"]["id"]
    for task_id in first["tasks"]:
        assert task_record(api, task_id)["status"] == "PENDING"
    assert listed(api, author) == [book_id]

    faults.clear()
    time.sleep(1.5)  # the records become due
    result = _run_relay(app_module)
    assert result["relayed"] >= 2 and result["complete"] == 1

    eventually(lambda: api.get(f"/books/{book_id}", user=None)[1]["cover_status"] == "ready", timeout=60, what="cover")
    assert eventually(lambda: mailbox.messages(to=email), timeout=60, what="mail")
    assert all(final_record(api, task_id)["status"] == "SUCCESS" for task_id in first["tasks"])

    status, again = post_with_key(api, body, key)  # the client's retry
    assert status == 202 and again["book"]["id"] == book_id and again["tasks"] == first["tasks"]
    assert listed(api, author) == [book_id]
    assert len(mailbox.messages(to=email)) == 1


def test_cover_replacement_with_the_same_key_happens_once(api: Any) -> None:
    book = made_book(api, unique_author("CoverKey"), "Integrity")["book"]
    key, data = f"cover-{uuid.uuid4()}", jpeg_bytes(300, 300)
    status, first = _put_cover_with_key(api, book["id"], data, key)
    assert status == 202 and first["book"]["cover"]["version"] == 1
    status, again = _put_cover_with_key(api, book["id"], data, key)
    assert status == 202 and again == first
    assert api.get(f"/books/{book['id']}", user=None)[1]["cover"]["version"] == 1
    status, body = _put_cover_with_key(api, book["id"], jpeg_bytes(310, 300), key)
    assert status == 422 and body["fields"][0]["field"] == "Idempotency-Key"


def test_relay_sends_a_committed_task_once_and_leaves_the_rest(
    api: Any, workers: Any, app_module: Any, relay_soon: Any
) -> None:
    from chalicelib.platform.transactions import transaction
    from chalicelib.tasks import outbox

    stranded, sent = noop.s(1), noop.s(2)
    with transaction() as tx:  # committed, but the process "died" before sending
        outbox.stage(tx, [stranded], "alice")
    with transaction() as tx:
        messages = outbox.stage(tx, [sent], "alice")
    assert outbox.send(messages) == 1
    assert TaskRecord.get(sent.task_id).outbox_shard is None  # acknowledged: out of the index
    assert TaskRecord.get(stranded.task_id).outbox_shard is not None
    time.sleep(1.5)
    _run_relay(app_module)
    assert final_record(api, stranded.task_id)["result"] == {"value": 1}
    assert final_record(api, sent.task_id)["attempts"] == 1
    assert TaskRecord.get(stranded.task_id).outbox_shard is None  # claimed: out of the index


def test_relay_stops_when_the_invocation_time_is_nearly_up(relay_soon: Any) -> None:
    from chalicelib.platform.transactions import transaction
    from chalicelib.tasks import outbox

    sig = noop.s(3)
    with transaction() as tx:
        outbox.stage(tx, [sig], None)
    result = outbox.relay(lambda: 1_000, now=time.time() + 5)
    assert result == {"due": 0, "relayed": 0, "complete": 0}
    assert TaskRecord.get(sig.task_id).outbox_shard is not None  # left for the next run


def _visible_task_ids(queue_name: str) -> set[str]:
    """Every task id visible in the queue now (workers paused); the messages are left visible."""
    from chalicelib.platform.aws import client
    from chalicelib.platform.sqs import queue_url

    sqs, url, seen, handles = client("sqs"), queue_url(queue_name), set(), []
    try:
        while batch := sqs.receive_message(QueueUrl=url, MaxNumberOfMessages=10, WaitTimeSeconds=0).get("Messages"):
            handles += [m["ReceiptHandle"] for m in batch]
            seen |= {json.loads(m["Body"]).get("id") for m in batch if m["Body"].startswith("{")}
    finally:
        for handle in handles:
            sqs.change_message_visibility(QueueUrl=url, ReceiptHandle=handle, VisibilityTimeout=0)
    return seen


def test_the_relay_keeps_the_delay_a_stranded_countdown_task_has_left(
    app_module: Any, paused_workers: Any, relay_soon: Any, settings: Any
) -> None:
    from chalicelib.platform.transactions import transaction
    from chalicelib.tasks import outbox

    later = noop.s(6, countdown=600)  # e.g. an upload's expiry, due in 10 minutes
    with transaction() as tx:  # committed, but the process "died" before sending
        outbox.stage(tx, [later], "alice")
    assert TaskRecord.get(later.task_id).outbox_eta >= time.time() + 590
    time.sleep(1.5)
    assert _run_relay(app_module)["relayed"] >= 1
    assert TaskRecord.get(later.task_id).outbox_shard is None  # SQS accepted it
    assert later.task_id not in _visible_task_ids(settings.default.name)  # delayed, not due at once


def test_dispatch_from_a_task_leaves_unsent_records_to_the_relay(api: Any, faults: Any, relay_soon: Any) -> None:
    faults.add(service="sqs", action="SendMessageBatch", code="ServiceUnavailable", status=503)
    task_id = noop.delay(4)  # no exception: the record waits in the outbox
    faults.clear()
    record = TaskRecord.get(task_id)
    assert record.status == "PENDING" and record.outbox_shard is not None
    assert records.awaits_send(task_id)


def test_cover_put_answers_the_pending_new_version_without_stale_urls(api: Any, workers: Any) -> None:
    book = made_book(api, unique_author("Fresh"), "Integrity", cover=b64(jpeg_bytes(400, 400)))["book"]
    eventually(lambda: api.get(f"/books/{book['id']}", user=None)[1]["cover_status"] == "ready", what="v1 ready")
    status, replaced = api.put(f"/books/{book['id']}/cover", raw=jpeg_bytes(500, 500), content_type="image/jpeg")
    assert status == 202
    cover = replaced["book"]["cover"]
    assert cover["version"] == 2 and cover["status"] == "pending"
    assert cover["thumbnails"] == {} and cover["sizes"] == []
    during = api.get(f"/books/{book['id']}", user=None)[1]["cover"]
    assert during["status"] == "ready" or all("/v1/" not in t["key"] for t in during["thumbnails"].values())
    ready = eventually(
        lambda: (b := api.get(f"/books/{book['id']}", user=None)[1])["cover_status"] == "ready" and b, what="v2"
    )
    assert all("/v2/" in t["key"] for t in ready["cover"]["thumbnails"].values())


def test_a_small_cover_is_not_upscaled_and_the_book_says_which_sizes_exist(api: Any, workers: Any) -> None:
    book = made_book(api, unique_author("Small"), "Integrity", cover=b64(jpeg_bytes(120, 160)))["book"]
    # 60 s: a resize that meets its staged message twice before the commit (a loaded machine)
    # looks again after the rest of OUTBOX_AWAIT_COMMIT_SECONDS (30 s; worker._await_commit).
    ready = eventually(
        lambda: (b := api.get(f"/books/{book['id']}", user=None)[1])["cover_status"] == "ready" and b,
        timeout=60,
        what="ready",
    )
    assert ready["cover"]["sizes"] == [100]
    assert set(ready["cover"]["thumbnails"]) == {"100.jpg", "100.webp"}


def _listing(api: Any, limit: int, pages: int) -> list[dict[str, Any]]:
    items, cursor = [], None
    for _ in range(pages):
        status, page = api.get(f"/tasks?limit={limit}" + (f"&cursor={cursor}" if cursor else ""), user="admin")
        assert status == 200, page
        items += page["items"]
        cursor = page["next_cursor"]
        if not cursor:
            break
    return items


def test_task_listing_is_newest_first_across_day_buckets(api: Any) -> None:
    yesterday = utcnow() - timedelta(days=1)
    old = records.new_record(Envelope(task_id=f"old-{uuid.uuid4()}", task="tests.integrity.noop"), "default")
    old.created_at, old.created_bucket = yesterday, records.bucket_of(old.id, yesterday)
    old.save()
    ids = []
    for i in range(3):
        ids.append(noop.s(i).task_id)
        records.create_pending(Envelope(task_id=ids[-1], task="tests.integrity.noop", args=[i]), "default")
        time.sleep(0.01)
    every = _listing(api, limit=7, pages=500)
    assert [r["id"] for r in every if r["id"] in ids] == list(reversed(ids))
    stamps = [r["created_at"] for r in every]
    assert stamps == sorted(stamps, reverse=True)
    assert old.id in {r["id"] for r in every}  # yesterday's bucket is reached through the cursor


def test_reconciler_writes_one_record_for_one_poison_message(
    api: Any, workers: Any, aws: Any, settings: Any, chalice_client: Any
) -> None:
    from chalicelib.platform.sqs import peek, queue_url

    body = f"not json {uuid.uuid4()}"
    aws("sqs").send_message(QueueUrl=queue_url(settings.default.name), MessageBody=body)

    def in_dlq() -> dict[str, Any] | None:
        return next((m for m in peek(settings.default.dlq_name) if m["Body"] == body), None)

    message = eventually(in_dlq, what="poison message in the DLQ")
    tagged = message["MessageAttributes"]["task-id"]["StringValue"]
    assert final_record(api, tagged)["status"] == "FAILURE"
    event = chalice_client.events.generate_cw_event(
        source="aws.events", detail_type="Scheduled Event", detail={}, resources=[]
    )
    chalice_client.lambda_.invoke("dead_letter_reconciler", event)
    assert task_record(api, f"sqs-{message['MessageId']}") is None  # no second record for the copy
    assert task_record(api, tagged)["status"] == "FAILURE"


def test_a_retry_racing_the_first_request_gets_its_answer(api: Any, monkeypatch: Any) -> None:
    """Both requests read 'no key yet'; the transaction's condition on the key decides the race."""
    from chalicelib.platform import idempotency

    real, calls = idempotency.replay, []

    def first_read_misses(claim: Any) -> Any:
        calls.append(claim)
        return None if len(calls) == 1 else real(claim)

    author, key = unique_author("Racing"), f"race-{uuid.uuid4()}"
    body = {"title": "Once", "authors": [author], "cover": b64(jpeg_bytes(200, 200))}
    status, first = post_with_key(api, body, key)
    assert status == 202
    monkeypatch.setattr(idempotency, "replay", first_read_misses)
    status, second = post_with_key(api, body, key)  # passes the early check, loses in the transaction
    monkeypatch.undo()
    assert status == 202 and second["book"]["id"] == first["book"]["id"] and len(calls) == 2
    assert listed(api, author) == [first["book"]["id"]]


def test_task_listing_pages_through_ties_across_shards_without_loss_or_duplicates(api: Any) -> None:
    from chalicelib.platform.pagination import encode_cursor, listing_scope

    moment = (utcnow() - timedelta(days=2)).replace(microsecond=123456)
    ids = sorted(f"tie-{uuid.uuid4()}" for _ in range(7))
    for task_id in ids:  # the same creation time: only the id orders them
        record = records.new_record(Envelope(task_id=task_id, task="tests.integrity.noop"), "default")
        record.created_at, record.created_bucket = moment, records.bucket_of(task_id, moment)
        record.save()
    assert len({records.bucket_of(task_id, moment) for task_id in ids}) > 1  # spread over shards
    seen: list[Any]
    cursor, seen = encode_cursor({"created_day": {"S": moment.date().isoformat()}}, listing_scope("tasks")), []
    while cursor and len(seen) < 50:
        status, page = api.get(f"/tasks?limit=2&cursor={cursor}", user="admin")
        assert status == 200, page
        seen += [r["id"] for r in page["items"]]
        cursor = page["next_cursor"]
    assert [task_id for task_id in seen if task_id.startswith("tie-")][:7] == list(reversed(ids))
