"""The whole flow with the workers running: book → thumbnails in S3 → email via SES → ready."""

from __future__ import annotations

import io
import json
from typing import Any, cast

from helpers import b64, dead_lettered, eventually, jpeg_bytes, unique_author, unique_email
from mailtools import parsed, seed_confirmed, text
from PIL import Image


def _book(api: Any, book_id: str) -> dict[str, Any]:
    return cast("dict[str, Any]", api.get(f"/books/{book_id}", user=None)[1])


def _ready(api: Any, book_id: str, version: int = 1) -> dict[str, Any] | None:
    book = _book(api, book_id)
    return book if book["cover_status"] == "ready" and book["cover"]["version"] == version else None


def _task_done(api: Any, task_id: str) -> dict[str, Any] | None:
    status, record = api.get(f"/tasks/{task_id}", user="admin")
    return record if status == 200 and record["status"] in ("SUCCESS", "FAILURE") else None


def test_book_with_cover_ends_with_thumbnails_and_email(
    api: Any, workers: Any, aws: Any, settings: Any, mailbox: Any
) -> None:
    author, email = unique_author("Pipeline"), unique_email()
    seed_confirmed(author, email)
    cover = jpeg_bytes(1600, 900)
    status, payload = api.post("/books", {"title": "Ancillary Justice", "authors": [author], "cover": b64(cover)})
    assert status == 202 and payload["book"]["cover_status"] == "pending"
    book_id = payload["book"]["id"]

    book = eventually(lambda: _ready(api, book_id), what="cover_status ready")
    thumbs = book["cover"]["thumbnails"]
    assert set(thumbs) == {"100.jpg", "100.webp", "200.jpg", "200.webp"}
    for name, entry in thumbs.items():
        obj = aws("s3").get_object(Bucket=settings.media_bucket, Key=entry["key"])
        with Image.open(io.BytesIO(obj["Body"].read())) as im:
            side = int(name.split(".")[0])
            assert im.size == (side, side)
            assert im.format == ("JPEG" if name.endswith("jpg") else "WEBP")
        assert "Signature" in entry["url"] or "X-Amz-Signature" in entry["url"]

    mail = eventually(lambda: mailbox.messages(to=email), what="the subscriber's email")
    assert len(mail) == 1
    assert parsed(mail[0])["Subject"] == "New book: Ancillary Justice"
    assert author in text(mail[0])
    assert mail[0]["Source"] == settings.mail_sender

    records = [eventually(lambda t=t: _task_done(api, t), what=f"task {t}") for t in payload["tasks"]]
    assert {r["name"] for r in records} == {"covers.resize", "books.notify_subscribers"}
    assert all(r["status"] == "SUCCESS" for r in records)
    resize = next(r for r in records if r["name"] == "covers.resize")
    assert resize["result"]["thumbnails"]["100.jpg"].endswith("/v1/100.jpg")
    assert resize["started_at"] and resize["finished_at"] and resize["attempts"] == 1


def test_each_subscriber_gets_one_email(api: Any, workers: Any, mailbox: Any) -> None:
    author = unique_author("Popular")
    emails = [unique_email(f"fan{i}") for i in range(3)]
    for email in emails:
        seed_confirmed(author, email, owner="bob")
    status, payload = api.post("/books", {"title": "Fan mail", "authors": [author]})
    assert status == 202
    notify = eventually(lambda: _task_done(api, payload["tasks"][0]), what="fan-out task")
    assert notify["status"] == "SUCCESS"

    def mailed() -> dict[str, Any] | None:  # the fan-out's counts over its segments, once complete
        record = _task_done(api, payload["tasks"][0])
        return record if record is not None and record["mail"]["complete"] else None

    # The first task mails segment 0 itself unless dealing used its time (then segment 0 runs
    # as its own task), so its own result may say 0 or 3: the fan-out's counts are the answer.
    mail = eventually(mailed, what="the fan-out complete")["mail"]
    assert (mail["mailed"], mail["failed"], mail["pending"], mail["failures"]) == (3, 0, 0, [])
    for email in emails:
        assert len(eventually(lambda e=email: mailbox.messages(to=e), what=f"mail to {email}")) == 1


def test_new_cover_replaces_the_old_thumbnails(api: Any, workers: Any, aws: Any, settings: Any) -> None:
    status, payload = api.post(
        "/books", {"title": "Two covers", "authors": [unique_author()], "cover": b64(jpeg_bytes())}
    )
    book_id = payload["book"]["id"]
    eventually(lambda: _ready(api, book_id), what="first cover ready")
    status, replaced = api.put(
        f"/books/{book_id}/cover", raw=jpeg_bytes(500, 1000, (0, 90, 0)), content_type="image/jpeg"
    )
    assert status == 202 and replaced["book"]["cover"]["version"] == 2
    book = eventually(lambda: _ready(api, book_id, version=2), what="second cover ready")
    assert all("/v2/" in t["key"] for t in book["cover"]["thumbnails"].values())

    def keys() -> list[str]:
        listed = aws("s3").list_objects_v2(Bucket=settings.media_bucket, Prefix=f"covers/{book_id}/")
        return [o["Key"] for o in listed.get("Contents", [])]

    # The old version's objects go once the book says v2 is ready (never before): a moment later.
    eventually(lambda: keys() and all("/v2/" in k for k in keys()), timeout=30, what="only v2's objects left")


def test_exif_rotated_cover_is_turned_upright(api: Any, workers: Any, aws: Any, settings: Any) -> None:
    from PIL import Image as PILImage

    im = PILImage.new("RGB", (400, 200), (255, 0, 0))
    im.paste((0, 0, 255), (0, 0, 200, 200))  # left half blue, right half red
    exif = PILImage.Exif()
    exif[0x0112] = 6  # rotate 90° clockwise when displayed
    buf = io.BytesIO()
    im.save(buf, "JPEG", exif=exif.tobytes(), quality=95)
    _status, payload = api.post(
        "/books", {"title": "Rotated", "authors": [unique_author()], "cover": b64(buf.getvalue())}
    )
    book = eventually(lambda: _ready(api, payload["book"]["id"]), what="rotated cover ready")
    key = book["cover"]["thumbnails"]["200.jpg"]["key"]
    with PILImage.open(io.BytesIO(aws("s3").get_object(Bucket=settings.media_bucket, Key=key)["Body"].read())) as thumb:
        top = cast("tuple[int, int, int]", thumb.getpixel((100, 10)))
        bottom = cast("tuple[int, int, int]", thumb.getpixel((100, 190)))
    # Upright, the blue half is on top and the red half at the bottom.
    assert top[2] > 150 and top[0] < 100, top
    assert bottom[0] > 150 and bottom[2] < 100, bottom


def test_handlers_take_events_from_generate_sqs_event(
    app_module: Any, chalice_client: Any, settings: Any, api: Any
) -> None:
    from chalicelib.tasks.envelope import Envelope

    status, payload = api.post("/books", {"title": "Direct", "authors": [unique_author()]})
    assert status == 202
    book_id = payload["book"]["id"]
    env = Envelope(task_id=f"direct-{book_id}", task="books.notify_subscribers", args=[book_id])
    event = chalice_client.events.generate_sqs_event(message_bodies=[env.encode()], queue_name=settings.default.name)
    result = chalice_client.lambda_.invoke("default_worker", event)
    assert result.payload == {"batchItemFailures": []}  # ReportBatchItemFailures: nothing to retry
    # chalice's test client invokes with LambdaContext's default 3 s budget, less than a fan-out
    # page's time_limit (5 s): the task is handed on as a new message, not run and not failed.
    status, _ = api.get(f"/tasks/{env.task_id}", user="admin")
    assert status == 404
    from chalice.local import LambdaContext

    deployed = LambdaContext("default_worker", 512, max_runtime_ms=30_000)  # the deployed function's timeout
    assert app_module.default_worker(event, deployed) == {"batchItemFailures": []}
    _status, record = api.get(f"/tasks/{env.task_id}", user="admin")
    assert record["status"] == "SUCCESS" and record["result"]["mailed"] == 0  # no subscribers

    body = f"{{not json {book_id}"  # unique, so only this test's copy is looked for in the shared DLQ
    poison = chalice_client.events.generate_sqs_event(message_bodies=[body], queue_name=settings.media.name)
    assert chalice_client.lambda_.invoke("media_worker", poison).payload == {"batchItemFailures": []}
    from chalicelib.platform.sqs import peek

    assert eventually(lambda: any(m["Body"] == body for m in peek(settings.media.dlq_name)), what="the poison copy")


def test_queue_overview_counts_messages(api: Any, aws: Any, settings: Any) -> None:
    status, body = api.get("/queues", user="admin")
    assert status == 200
    media = next(q for q in body["queues"] if q["queue"] == "media")
    assert media["max_concurrency"] == settings.media.max_concurrency == 2
    assert {"visible", "in_flight", "delayed", "dead_letter"} <= set(media)
    assert json.dumps(body)  # serialisable


def test_corrupt_cover_fails_clearly_and_dead_letters(api: Any, workers: Any, aws: Any, settings: Any) -> None:

    whole = jpeg_bytes(900, 700, quality=95)
    status, payload = api.post("/books", {"title": "Torn", "authors": [unique_author()], "cover": b64(whole[:400])})
    assert status == 202  # the magic bytes are right; only decoding can tell
    task_id = payload["tasks"][0]
    record = eventually(lambda: _task_done(api, task_id), what="resize outcome")
    assert record["status"] == "FAILURE" and record["attempts"] == 1
    assert record["error"].startswith("permanent error: PermanentTaskError: corrupt image")
    # The record is FAILURE before the failure hook marks the book (executor._failed): wait for the
    # mark, as test_failure_hooks and test_uploads do.
    book = eventually(
        lambda: (b := _book(api, payload["book"]["id"]))["cover_status"] == "failed" and b, what="the hook's mark"
    )
    assert "corrupt image" in book["cover"]["error"]

    message = eventually(lambda: dead_lettered(settings.media.dlq_name).get(task_id), what="the resize message in DLQ")
    assert "corrupt image" in message["MessageAttributes"]["failure-reason"]["StringValue"]
