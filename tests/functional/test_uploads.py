"""Direct cover uploads over real HTTP: presigned POST to the emulator's S3, its event on the media
queue, the worker's checks, the resize, the expiry; and what S3 refuses."""

from __future__ import annotations

import io
import json
import os
import time
import uuid
from collections.abc import Mapping
from typing import Any, cast

import pytest
import requests
from helpers import dead_lettered, eventually, final_record, image_bytes, is_emulator, jpeg_bytes, unique_author
from PIL import Image


def _book(api: Any, book_id: str) -> dict[str, Any]:
    return cast("dict[str, Any]", api.get(f"/books/{book_id}", user=None)[1])


def _new_book(api: Any, content_type: str = "image/jpeg", size: int = 1000, user: str = "alice") -> dict[str, Any]:
    status, payload = api.post(
        "/books",
        {
            "title": "Uploaded",
            "authors": [unique_author()],
            "cover_upload": {"content_type": content_type, "size": size},
        },
        user=user,
    )
    assert status == 202, payload
    return cast("dict[str, Any]", payload)


def _post(
    upload: Mapping[str, Any], data: bytes, filename: str = "cover.jpg", **field_changes: Any
) -> requests.Response:
    fields = {**upload["fields"], **field_changes}
    fields = {k: v for k, v in fields.items() if v is not None}
    content_type = fields.get("Content-Type", "application/octet-stream")
    return requests.post(upload["url"], data=fields, files={"file": (filename, data, content_type)}, timeout=120)


def _error(response: requests.Response) -> tuple[int, str, str]:
    from xml.etree import ElementTree

    root = ElementTree.fromstring(response.content)
    return response.status_code, root.findtext("Code") or "", root.findtext("Message") or ""


def _noise_jpeg(width: int, height: int, quality: int) -> bytes:
    im = Image.frombytes("RGB", (width, height), os.urandom(width * height * 3))
    buf = io.BytesIO()
    im.save(buf, "JPEG", quality=quality)
    return buf.getvalue()


def test_twelve_megabyte_jpeg_goes_from_presigned_post_to_ready_thumbnails(
    api: Any, workers: Any, aws: Any, settings: Any
) -> None:
    photo = _noise_jpeg(4000, 3000, 92)
    assert 10_000_000 < len(photo) < settings.max_upload_bytes  # a real phone-sized photo, over the inline limit
    payload = _new_book(api, size=len(photo))
    book, upload = payload["book"], payload["upload"]
    assert book["cover_status"] == "awaiting_upload" and book["cover"]["version"] == 1
    assert upload["max_bytes"] == settings.max_upload_bytes and upload["expires_at"]
    assert upload["fields"]["key"] == f"uploads/{book['id']}/v1"
    assert upload["fields"]["Content-Type"] == "image/jpeg"
    ingest_id = payload["tasks"][0]
    assert api.get(f"/tasks/{ingest_id}")[1]["status"] == "PENDING"  # the owner can follow it at once

    response = _post(upload, photo)
    assert response.status_code == 204, response.text

    record = final_record(api, ingest_id, timeout=120)
    assert record["status"] == "SUCCESS", record
    assert record["name"] == "covers.ingest_upload" and record["owner"] == "alice"
    assert record["result"]["upload"] == {"bytes": len(photo), "declared": "image/jpeg", "detected": "image/jpeg"}
    ready = _book(api, book["id"])
    assert ready["cover_status"] == "ready"
    for name, entry in ready["cover"]["thumbnails"].items():
        data = aws("s3").get_object(Bucket=settings.media_bucket, Key=entry["key"])["Body"].read()
        with Image.open(io.BytesIO(data)) as im:
            side = int(name.split(".")[0])
            assert im.size == (side, side) and im.format == ("JPEG" if name.endswith("jpg") else "WEBP")
    s3 = aws("s3")
    original = s3.head_object(Bucket=settings.media_bucket, Key=f"covers/{book['id']}/v1/original")
    assert original["ContentLength"] == len(photo) and original["ContentType"] == "image/jpeg"
    assert "Contents" not in s3.list_objects_v2(Bucket=settings.media_bucket, Prefix=f"uploads/{book['id']}/")


def test_upload_over_the_policy_limit_is_refused_by_s3_and_the_book_expires(
    api: Any, workers: Any, aws: Any, settings: Any
) -> None:
    payload = _new_book(api, size=1000)
    book_id, upload = payload["book"]["id"], payload["upload"]
    too_big = b"\xff\xd8\xff" + bytes(26 * 1024 * 1024)
    status, code, message = _error(_post(upload, too_big))
    assert (status, code) == (400, "EntityTooLarge"), message
    assert "Contents" not in aws("s3").list_objects_v2(Bucket=settings.media_bucket, Prefix=f"uploads/{book_id}/")
    assert _book(api, book_id)["cover_status"] == "awaiting_upload"

    wait = settings.upload_ttl_seconds + settings.upload_expiry_margin_seconds
    expired = eventually(
        lambda: (b := _book(api, book_id))["cover_status"] == "upload_expired" and b,
        timeout=wait + 60,
        what="the upload to expire",
    )
    assert "no upload arrived" in expired["cover"]["error"]
    record = final_record(api, payload["tasks"][0])
    assert record["status"] == "FAILURE" and "no upload arrived" in record["error"]
    # The URL's lifetime is over: S3 refuses the form itself now.
    status, code, message = _error(_post(upload, jpeg_bytes()))
    assert (status, code, message) == (403, "AccessDenied", "Invalid according to Policy: Policy expired.")
    # An upload that started in time and landed late (S3 checks the policy when it starts) still wins.
    aws("s3").put_object(
        Bucket=settings.media_bucket, Key=upload["fields"]["key"], Body=jpeg_bytes(), ContentType="image/jpeg"
    )
    eventually(lambda: _book(api, book_id)["cover_status"] == "ready", timeout=90, what="the late upload resized")
    assert final_record(api, payload["tasks"][0])["status"] == "SUCCESS"


def test_an_expiry_past_the_sqs_delay_limit_is_reached_in_hops(api: Any, paused_workers: Any) -> None:
    from chalicelib.covers.upload.tasks import expire_upload

    book_id = _new_book(api)["book"]["id"]
    deadline = time.time() + 3600
    result = expire_upload.func(book_id, 1, "no-such-task", deadline)
    hop = api.get(f"/tasks/{result['rescheduled']}", user="admin")[1]
    assert hop["status"] == "PENDING" and hop["name"] == "covers.expire_upload"
    assert hop["args"] == [book_id, 1, "no-such-task", deadline]
    assert _book(api, book_id)["cover_status"] == "awaiting_upload"  # nothing expired early


def _failed_condition(message: str, field: str, value: str) -> bool:
    """S3 and the emulator name a failed condition as ["eq", "$content-type", "image/jpeg"];
    LocalStack echoes it as written in the policy ({"Content-Type": "image/jpeg"}). Either way:
    the policy's message, that field, that value."""
    prefix = "Invalid according to Policy: Policy Condition failed: "
    condition = message.removeprefix(prefix)
    return message.startswith(prefix) and f'"{field}"' in condition.lower().replace("$", "") and value in condition


def test_wrong_content_type_in_the_form_is_refused(api: Any, aws: Any, settings: Any) -> None:
    upload = _new_book(api)["upload"]
    status, code, message = _error(_post(upload, image_bytes("PNG"), "cover.png", **{"Content-Type": "image/png"}))
    assert (status, code) == (403, "AccessDenied")
    assert _failed_condition(message, "content-type", "image/jpeg")
    status, code, message = _error(_post(upload, jpeg_bytes(), key=upload["fields"]["key"] + "-elsewhere"))
    assert (status, code) == (403, "AccessDenied") and _failed_condition(message, "key", upload["fields"]["key"])
    key = upload["fields"]["key"]
    with pytest.raises(aws("s3").exceptions.ClientError):
        aws("s3").head_object(Bucket=settings.media_bucket, Key=key)


def test_extra_form_fields_and_a_bad_signature_are_refused(api: Any, aws: Any) -> None:
    s3 = str(aws("s3").meta.endpoint_url)
    if not is_emulator(s3, timeout=5):
        pytest.skip(
            f"S3 at {s3} is not the embedded emulator: LocalStack 2026.3 stores a form with fields the policy "
            "does not name, and skips signature checks by default (S3_SKIP_SIGNATURE_VALIDATION); S3 refuses both"
        )
    upload = _new_book(api)["upload"]
    bad = upload["fields"]["x-amz-signature"][:-4] + "0000"
    status, code, _ = _error(_post(upload, jpeg_bytes(), **{"x-amz-signature": bad}))
    assert (status, code) == (403, "SignatureDoesNotMatch")
    status, code, message = _error(_post(upload, jpeg_bytes(), **{"x-amz-meta-note": "hi"}))
    assert (status, code, message) == (
        403,
        "AccessDenied",
        "Invalid according to Policy: Extra input fields: x-amz-meta-note",
    )


def test_png_uploaded_as_jpeg_is_detected_by_its_bytes(api: Any, workers: Any, aws: Any, settings: Any) -> None:
    png = image_bytes("PNG", (800, 600))
    payload = _new_book(api, size=len(png))
    assert _post(payload["upload"], png, "cover.jpg").status_code == 204  # the policy allows it: it says image/jpeg
    record = final_record(api, payload["tasks"][0], timeout=90)
    assert record["status"] == "SUCCESS", record
    assert record["result"]["upload"]["declared"] == "image/jpeg"
    assert record["result"]["upload"]["detected"] == "image/png"
    book_id = payload["book"]["id"]
    assert _book(api, book_id)["cover_status"] == "ready"
    original = aws("s3").head_object(Bucket=settings.media_bucket, Key=f"covers/{book_id}/v1/original")
    assert original["ContentType"] == "image/png"  # stored as what it is


def test_upload_that_is_not_an_image_fails_clearly_and_dead_letters(api: Any, workers: Any, settings: Any) -> None:
    payload = _new_book(api)
    assert _post(payload["upload"], b"%PDF-1.7 definitely not a cover").status_code == 204
    task_id = payload["tasks"][0]
    record = final_record(api, task_id, timeout=90)
    assert record["status"] == "FAILURE" and record["attempts"] == 1
    assert "not a JPEG, PNG or WebP image (declared image/jpeg)" in record["error"]
    # The on_failure hook marks the cover after the record says FAILURE (Celery's order too).
    book = eventually(
        lambda: (b := _book(api, payload["book"]["id"]))["cover_status"] == "failed" and b,
        timeout=30,
        what="the failure hook to mark the cover",
    )
    assert "not a JPEG, PNG or WebP" in book["cover"]["error"]
    message = eventually(lambda: dead_lettered(settings.media.dlq_name).get(task_id), what="the S3 event in the DLQ")
    assert json.loads(message["Body"])["Records"][0]["eventSource"] == "aws:s3"


def test_duplicate_s3_event_resizes_once(api: Any, paused_workers: Any, aws: Any, settings: Any) -> None:
    from chalicelib.platform.sqs import queue_url

    photo = jpeg_bytes(1600, 1200)
    payload = _new_book(api, size=len(photo))
    assert _post(payload["upload"], photo).status_code == 204
    sqs, url = aws("sqs"), queue_url(settings.media.name)

    def s3_event() -> dict[str, Any] | None:
        for message in sqs.receive_message(QueueUrl=url, MaxNumberOfMessages=10, WaitTimeSeconds=1).get("Messages", []):
            body = json.loads(message["Body"])
            if body.get("Records") and payload["book"]["id"] in body["Records"][0]["s3"]["object"]["key"]:
                return cast("dict[str, Any] | None", message)
            sqs.change_message_visibility(QueueUrl=url, ReceiptHandle=message["ReceiptHandle"], VisibilityTimeout=0)
        return None

    event = eventually(s3_event, what="the S3 event on the media queue")
    sqs.send_message(QueueUrl=url, MessageBody=event["Body"])  # S3 delivers at least once
    sqs.change_message_visibility(QueueUrl=url, ReceiptHandle=event["ReceiptHandle"], VisibilityTimeout=0)
    paused_workers.resume()
    record = final_record(api, payload["tasks"][0], timeout=90)
    assert record["status"] == "SUCCESS" and record["attempts"] == 1
    eventually(
        lambda: (
            sqs.get_queue_attributes(
                QueueUrl=url, AttributeNames=["ApproximateNumberOfMessages", "ApproximateNumberOfMessagesNotVisible"]
            )["Attributes"]
            == {"ApproximateNumberOfMessages": "0", "ApproximateNumberOfMessagesNotVisible": "0"}
        ),
        what="both copies consumed",
    )
    assert _task_after(api, payload["tasks"][0])["attempts"] == 1  # the duplicate was skipped, not re-run


def _task_after(api: Any, task_id: str) -> dict[str, Any]:
    return cast("dict[str, Any]", api.get(f"/tasks/{task_id}", user="admin")[1])


def test_s3_test_event_is_not_a_poison_message(chalice_client: Any, settings: Any) -> None:
    # A bucket name of its own: the DLQ is shared with other tests (some leave non-JSON poison
    # there), so this test looks only for its own message, by its exact body.
    bucket = f"test-event-{uuid.uuid4().hex}"
    event_time = "2026-01-01T00:00:00Z"
    body = json.dumps({"Service": "Amazon S3", "Event": "s3:TestEvent", "Time": event_time, "Bucket": bucket})
    event = chalice_client.events.generate_sqs_event(message_bodies=[body], queue_name=settings.media.name)
    assert chalice_client.lambda_.invoke("media_worker", event).payload == {"batchItemFailures": []}
    assert not any(m["Body"] == body for m in _dlq(settings))


def _dlq(settings: Any) -> list[dict[str, Any]]:
    from chalicelib.platform.sqs import peek

    return peek(settings.media.dlq_name)


def test_new_cover_upload_is_owner_only_and_makes_a_new_version(api: Any, workers: Any) -> None:
    status, payload = api.post("/books", {"title": "Mine", "authors": [unique_author()]})
    book_id = payload["book"]["id"]
    body = {"content_type": "image/webp", "size": 5000}
    status, denied = api.post(f"/books/{book_id}/cover/upload", body, user="bob")
    assert status == 403 and denied["error"] == "Forbidden" and "upload" not in denied
    assert api.post(f"/books/{book_id}/cover/upload", body, user=None)[0] == 401
    assert api.post("/books/00000000-0000-4000-8000-000000000000/cover/upload", body)[0] == 404

    status, first = api.post(f"/books/{book_id}/cover/upload", body)
    assert status == 201 and first["book"]["cover"]["version"] == 1
    status, second = api.post(f"/books/{book_id}/cover/upload", body)
    assert status == 201 and second["book"]["cover"]["version"] == 2
    assert second["upload"]["fields"]["key"] == f"uploads/{book_id}/v2"
    webp = image_bytes("WEBP", (500, 500))
    assert _post(second["upload"], webp, "c.webp").status_code == 204
    assert final_record(api, second["tasks"][0], timeout=90)["status"] == "SUCCESS"
    ready = _book(api, book_id)
    assert ready["cover_status"] == "ready" and ready["cover"]["version"] == 2
    # The superseded version's URL still uploads (S3 cannot know), but the worker drops it.
    assert _post(first["upload"], webp, "c.webp").status_code == 204
    record = final_record(api, first["tasks"][0], timeout=90)
    assert record["result"] == {"skipped": "book deleted or cover replaced"}
    assert _book(api, book_id)["cover"]["version"] == 2


def test_bucket_sends_upload_events_to_the_media_queue_and_expires_abandoned_uploads(aws: Any, settings: Any) -> None:
    s3 = aws("s3")
    notification = s3.get_bucket_notification_configuration(Bucket=settings.media_bucket)["QueueConfigurations"]
    assert [n["QueueArn"].rsplit(":", 1)[-1] for n in notification] == [settings.media.name]
    rules = notification[0]["Filter"]["Key"]["FilterRules"]
    assert [(r["Name"].lower(), r["Value"]) for r in rules] == [("prefix", "uploads/")]  # S3 answers "Prefix"
    assert notification[0]["Events"] == ["s3:ObjectCreated:*"]
    rules = s3.get_bucket_lifecycle_configuration(Bucket=settings.media_bucket)["Rules"]
    assert rules[0]["Filter"] == {"Prefix": "uploads/"} and rules[0]["Expiration"] == {"Days": 1}
    cors = s3.get_bucket_cors(Bucket=settings.media_bucket)["CORSRules"]
    assert cors[0]["AllowedMethods"] == ["POST"]
    from chalicelib.platform.sqs import queue_url

    policy = json.loads(
        aws("sqs").get_queue_attributes(QueueUrl=queue_url(settings.media.name), AttributeNames=["Policy"])[
            "Attributes"
        ]["Policy"]
    )
    statement = policy["Statement"][0]
    assert statement["Principal"] == {"Service": "s3.amazonaws.com"}
    assert statement["Condition"]["ArnEquals"]["aws:SourceArn"] == f"arn:aws:s3:::{settings.media_bucket}"


def test_expired_presigned_post_is_refused(settings: Any) -> None:
    from chalicelib.covers import storage

    upload = storage.presigned_post("uploads/expiry-check", "image/jpeg", 1000, ttl_seconds=1)
    time.sleep(2.1)
    status, code, message = _error(_post(upload, jpeg_bytes(40, 40)))
    assert (status, code, message) == (403, "AccessDenied", "Invalid according to Policy: Policy expired.")


def test_conditional_writes_are_atomic_at_the_emulator(aws: Any, settings: Any) -> None:
    """Two workers claiming one task at once: exactly one wins, as on DynamoDB (moto alone let both win)."""
    import threading
    import uuid

    import boto3

    table = settings.tasks_table
    doubles = 0
    for _ in range(40):
        task_id = f"race-{uuid.uuid4()}"
        aws("dynamodb").put_item(TableName=table, Item={"id": {"S": task_id}, "status": {"S": "PENDING"}})
        wins: list[int] = []
        barrier = threading.Barrier(2)

        def claim(task_id: str = task_id, barrier: threading.Barrier = barrier, wins: list[int] = wins) -> None:
            # No endpoint_url: botocore reads AWS_ENDPOINT_URL_DYNAMODB first (the emulator's when
            # the rest is on LocalStack), then AWS_ENDPOINT_URL.
            ddb = boto3.client("dynamodb", region_name=settings.region)
            barrier.wait()
            try:
                ddb.update_item(
                    TableName=table,
                    Key={"id": {"S": task_id}},
                    UpdateExpression="SET #s = :started",
                    ConditionExpression="#s = :pending",
                    ExpressionAttributeNames={"#s": "status"},
                    ExpressionAttributeValues={":started": {"S": "STARTED"}, ":pending": {"S": "PENDING"}},
                )
                wins.append(1)
            except ddb.exceptions.ConditionalCheckFailedException:
                pass

        threads = [threading.Thread(target=claim) for _ in range(2)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
        assert wins, "one claim must win"
        doubles += len(wins) == 2
    assert doubles == 0


def _calls_of(monkeypatch: Any, request: Any) -> list[str]:
    """The AWS operations `request()` makes in this thread, observed at botocore (they still go out)."""
    import threading

    from botocore.client import BaseClient

    seen: list[str] = []
    original = BaseClient._make_api_call
    me = threading.get_ident()

    def observed(client: Any, operation: str, params: dict[str, Any]) -> Any:
        if threading.get_ident() == me:
            seen.append(operation)
        return original(client, operation, params)

    monkeypatch.setattr(BaseClient, "_make_api_call", observed)
    request()
    monkeypatch.setattr(BaseClient, "_make_api_call", original)
    return seen


@pytest.mark.parametrize("idempotency_key", [None, "calls-{}"])
def test_a_book_with_cover_upload_costs_three_aws_calls_one_in_the_requests_thread(
    chalice_client: Any, keys: dict[str, str], paused_workers: Any, monkeypatch: Any, idempotency_key: str | None
) -> None:
    """One transaction (book, author index, the PENDING ingest, expiry and notify records, the
    key) in the request's thread; one SendMessageBatch to `default` sent while it commits and one
    transaction taking both sent tasks out of the outbox, in the outbox's threads (issue 24)."""
    headers = {"Authorization": f"Bearer {keys['alice']}", "Content-Type": "application/json"}
    body = {"title": "Counted", "authors": [unique_author()], "cover_upload": {"content_type": "image/jpeg", "size": 9}}
    chalice_client.http.post("/books", headers=headers, body=json.dumps(body))  # queue URLs resolved once
    if idempotency_key is not None:
        headers["Idempotency-Key"] = idempotency_key.format(time.time_ns())
    answers: list[Any] = []

    def create() -> None:
        answers.append(chalice_client.http.post("/books", headers=headers, body=json.dumps(body)))

    calls = _calls_of(monkeypatch, create)
    assert answers[0].status_code == 202, answers[0].body
    assert calls == ["TransactWriteItems"]
    payload = json.loads(answers[0].body)
    ingest, *sent = payload["tasks"]
    from chalicelib.tasks.models import TaskRecord

    record = TaskRecord.get(ingest, consistent_read=True)
    assert record.status == "PENDING" and record.outbox_shard is None  # S3 sends its message, not the relay
    for task_id in sent:  # acknowledged, off the request's path

        def acknowledged(task_id: str = task_id) -> bool:
            return TaskRecord.get(task_id, consistent_read=True).outbox_shard is None

        eventually(acknowledged, timeout=10, what="acknowledged")
    if idempotency_key is not None:  # the retry finds the first answer
        retry = chalice_client.http.post("/books", headers=headers, body=json.dumps(body))
        assert json.loads(retry.body) == payload


def test_one_acknowledgement_takes_every_sent_task_out_of_the_outbox(
    paused_workers: Any, monkeypatch: Any, settings: Any
) -> None:
    """The request path's single acknowledgement also covers a task a worker claimed first
    (its claim removed the markers already; nothing conditional fails, nothing is reset)."""
    import uuid

    from chalicelib.covers.upload.tasks import expire_upload
    from chalicelib.platform.sqs import queue_url
    from chalicelib.platform.transactions import transaction
    from chalicelib.tasks import outbox, records
    from chalicelib.tasks.models import TaskRecord

    # Harmless when the workers resume: no such book, no such ingest record.
    signatures = [expire_upload.s(str(uuid.uuid4()), 1, f"no-such-{i}", time.time()) for i in range(3)]
    with transaction() as tx:
        messages = outbox.stage(tx, signatures, "alice")
    assert records.claim(messages[0].envelope, settings.default.name, 60).outcome == "claimed"
    queue_url(settings.default.name)  # resolved once per container: as warm as a request path's
    sent: list[int] = []
    calls = _calls_of(monkeypatch, lambda: sent.append(outbox.send(messages, batch_ack=True)))
    assert sent == [3] and calls == ["SendMessageBatch", "TransactWriteItems"]
    stored = [TaskRecord.get(m.envelope.task_id, consistent_read=True) for m in messages]
    assert [r.outbox_shard for r in stored] == [None, None, None]
    assert [r.status for r in stored] == ["STARTED", "PENDING", "PENDING"]


def test_ingest_task_is_filed_under_its_book_not_the_bucket(
    api: Any, workers: Any, settings: Any, gateway_url: str, keys: dict[str, str]
) -> None:
    """Issue 21 item 3: the ingest record's book_id is the book's, so `?book=<id>` lists it."""
    from dashboard_support import sign_in

    photo = jpeg_bytes(400, 400)
    payload = _new_book(api, size=len(photo))
    book_id, ingest_id = payload["book"]["id"], payload["tasks"][0]
    assert api.get(f"/tasks/{ingest_id}")[1]["book_id"] == book_id  # the PENDING record, before any upload
    assert _post(payload["upload"], photo).status_code == 204
    assert final_record(api, ingest_id, timeout=90)["status"] == "SUCCESS"
    assert api.get(f"/tasks/{ingest_id}")[1]["book_id"] == book_id
    admin = sign_in(gateway_url, keys["admin"])
    listed = admin.get(f"/dashboard/api/tasks?book={book_id}&name=covers.ingest_upload").json()["items"]
    assert [item["id"] for item in listed] == [ingest_id]
    by_bucket = admin.get(f"/dashboard/api/tasks?book={settings.media_bucket}").json()["items"]
    assert ingest_id not in [item["id"] for item in by_bucket]


def test_an_upload_beside_a_ready_cover_keeps_it_served_until_the_new_one_is_ready(
    api: Any, workers: Any, aws: Any, settings: Any
) -> None:
    """Issue 21 item 2: asking for an upload does not hide a ready cover; a failed or abandoned
    upload leaves it served; only a new version that is ready replaces it."""
    from helpers import b64

    status, created = api.post("/books", {"title": "Kept", "authors": [unique_author()], "cover": b64(jpeg_bytes())})
    assert status == 202, created
    book_id = created["book"]["id"]
    ready = eventually(lambda: (b := _book(api, book_id))["cover_status"] == "ready" and b, timeout=90, what="v1")
    served = {k: ready["cover"][k] for k in ("version", "sizes")}
    assert served["version"] == 1 and ready["cover"].get("upload") is None

    def still_served(book: dict[str, Any]) -> None:
        assert book["cover_status"] == "ready" and book["cover"]["status"] == "ready", book
        assert {k: book["cover"][k] for k in ("version", "sizes")} == served, book
        assert set(book["cover"]["thumbnails"]) == set(ready["cover"]["thumbnails"]), book
        for entry in book["cover"]["thumbnails"].values():
            assert requests.get(entry["url"], timeout=30).status_code == 200, entry

    # 1. An upload that is not an image fails beside the cover.
    body = {"content_type": "image/jpeg", "size": 1000}
    status, bad = api.post(f"/books/{book_id}/cover/upload", body)
    assert status == 201, bad
    still_served(bad["book"])
    assert bad["book"]["cover"]["upload"] == {"version": 2, "status": "awaiting_upload", "error": None}
    still_served(_book(api, book_id))
    assert _post(bad["upload"], b"%PDF-1.7 not a cover").status_code == 204
    assert final_record(api, bad["tasks"][0], timeout=90)["status"] == "FAILURE"
    # The on_failure hook marks the upload after the record says FAILURE (Celery's order too).
    book = eventually(
        lambda: (b := _book(api, book_id))["cover"]["upload"]["status"] == "failed" and b,
        timeout=30,
        what="the failure hook to mark the upload",
    )
    still_served(book)
    assert "not a JPEG" in book["cover"]["upload"]["error"]

    # 2. An upload that never comes expires beside the cover.
    status, abandoned = api.post(f"/books/{book_id}/cover/upload", body)
    assert status == 201 and abandoned["book"]["cover"]["upload"]["version"] == 3, abandoned
    wait = settings.upload_ttl_seconds + settings.upload_expiry_margin_seconds
    book = eventually(
        lambda: (b := _book(api, book_id))["cover"]["upload"]["status"] == "upload_expired" and b,
        timeout=wait + 60,
        what="the upload to expire",
    )
    still_served(book)
    assert "no upload arrived" in book["cover"]["upload"]["error"]

    # 3. An upload that is ready replaces the cover, and only then are the old objects deleted.
    photo = jpeg_bytes(640, 480)
    status, good = api.post(f"/books/{book_id}/cover/upload", {"content_type": "image/jpeg", "size": len(photo)})
    assert status == 201 and good["book"]["cover"]["upload"]["version"] == 4, good
    assert _post(good["upload"], photo).status_code == 204
    assert final_record(api, good["tasks"][0], timeout=90)["status"] == "SUCCESS"
    book = _book(api, book_id)
    assert book["cover_status"] == "ready" and book["cover"]["version"] == 4 and book["cover"]["upload"] is None
    assert all("/v4/" in entry["key"] for entry in book["cover"]["thumbnails"].values())
    listed = aws("s3").list_objects_v2(Bucket=settings.media_bucket, Prefix=f"covers/{book_id}/")
    assert {obj["Key"].split("/")[2] for obj in listed.get("Contents", [])} == {"v4"}
