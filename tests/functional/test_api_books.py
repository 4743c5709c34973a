"""Every book and subscriber route through the Chalice test client, against the emulator."""

from __future__ import annotations

from typing import Any, cast

import pytest
from helpers import b64, image_bytes, jpeg_bytes, unique_author


def _create(api: Any, user: str = "alice", **fields: Any) -> dict[str, Any]:
    body = {"title": "The Left Hand of Darkness", "authors": [unique_author()], **fields}
    status, payload = api.post("/books", body, user=user)
    assert status == 202, payload
    return cast("dict[str, Any]", payload)


def test_create_book_answers_202_with_book_and_tasks(api: Any, aws: Any, settings: Any) -> None:
    payload = _create(api, description="A classic", cover=b64(jpeg_bytes()))
    book = payload["book"]
    assert book["title"] == "The Left Hand of Darkness"
    assert book["description"] == "A classic"
    assert book["owner"] == "alice"
    assert book["cover_status"] == "pending"
    assert book["cover"]["version"] == 1
    assert len(payload["tasks"]) == 2  # resize + notify
    original = aws("s3").head_object(Bucket=settings.media_bucket, Key=f"covers/{book['id']}/v1/original")
    assert original["ContentType"] == "image/jpeg"
    assert original["ServerSideEncryption"] == "AES256"


def test_delete_book_removes_its_objects_and_index_rows(api: Any, aws: Any, settings: Any, paused_workers: Any) -> None:
    """No worker runs: a resize in flight writes thumbnails after the delete and removes them itself once
    it finds the book gone (covers/service.py), so the listing right after the delete would race with it."""
    author = unique_author("Gone")
    book = _create(api, authors=[author], cover=b64(jpeg_bytes()))["book"]
    status, _ = api.delete(f"/books/{book['id']}")
    assert status == 204
    assert api.get(f"/books/{book['id']}", user=None)[0] == 404
    listed = aws("s3").list_objects_v2(Bucket=settings.media_bucket, Prefix=f"covers/{book['id']}/")
    assert listed.get("KeyCount", 0) == 0
    assert api.get(f"/books?author={author.replace(' ', '%20')}", user=None)[1]["items"] == []


@pytest.mark.parametrize(
    ("content_type", "data"),
    [("image/jpeg", jpeg_bytes(300, 300)), ("image/png", image_bytes("PNG")), ("image/webp", image_bytes("WEBP"))],
)
def test_replace_cover_accepts_jpeg_png_webp(api: Any, aws: Any, settings: Any, content_type: str, data: bytes) -> None:
    book = _create(api)["book"]
    status, payload = api.put(f"/books/{book['id']}/cover", raw=data, content_type=content_type)
    assert status == 202, payload
    assert payload["book"]["cover_status"] == "pending" and payload["book"]["cover"]["version"] == 1
    assert len(payload["tasks"]) == 1
    # A replaced cover's original carries a random suffix (concurrent replacements cannot overwrite it).
    listed = aws("s3").list_objects_v2(Bucket=settings.media_bucket, Prefix=f"covers/{book['id']}/v1/original")
    (key,) = [obj["Key"] for obj in listed["Contents"]]
    stored = aws("s3").get_object(Bucket=settings.media_bucket, Key=key)
    assert stored["Body"].read() == data and stored["ContentType"] == content_type


def test_write_routes_need_a_valid_key(api: Any) -> None:
    body = {"title": "T", "authors": ["A"]}
    assert api.post("/books", body, user=None)[0] == 401
    status, _ = api.call("post", "/books", None, body, content_type="application/json")
    assert status == 401
    api.keys["mallory"] = "not-a-real-key"
    assert api.post("/books", body, user="mallory")[0] == 403


def test_admin_routes_refuse_ordinary_users(api: Any) -> None:
    assert api.get("/queues", user="alice")[0] == 403
    assert api.get("/tasks", user="alice")[0] == 403
    assert api.post("/queues/default/redrive", user="alice")[0] == 403
    status, body = api.get("/queues", user="admin")
    assert status == 200 and {q["queue"] for q in body["queues"]} == {"media", "default"}


def test_task_record_is_readable_by_its_owner_only(api: Any) -> None:
    payload = _create(api, user="alice")
    task_id = payload["tasks"][0]
    status, record = api.get(f"/tasks/{task_id}", user="alice")
    assert status == 200 and record["id"] == task_id and record["status"] in {"PENDING", "STARTED", "SUCCESS"}
    assert record["name"] == "books.notify_subscribers" and record["queue"] == "default"
    assert api.get(f"/tasks/{task_id}", user="bob")[0] == 403
    assert api.get(f"/tasks/{task_id}", user="admin")[0] == 200
    assert api.get("/tasks/unknown-task", user="alice")[0] == 404
