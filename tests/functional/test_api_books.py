"""Every book and subscriber route through the Chalice test client, against the emulator."""

from __future__ import annotations

from typing import Any, cast

import pytest
from helpers import b64, image_bytes, jpeg_bytes, unique_author, unique_email


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


def test_create_book_without_cover_has_no_cover(api: Any) -> None:
    payload = _create(api)
    assert payload["book"]["cover_status"] == "none"
    assert len(payload["tasks"]) == 1


def test_get_book_and_404(api: Any) -> None:
    book = _create(api)["book"]
    status, fetched = api.get(f"/books/{book['id']}", user=None)
    assert status == 200 and fetched["id"] == book["id"] and fetched["authors"] == book["authors"]
    status, missing = api.get("/books/does-not-exist", user=None)
    assert status == 404 and missing["error"] == "NotFound"


def test_list_by_author_is_paginated_with_a_cursor(api: Any) -> None:
    author = unique_author("Paged")
    created = [_create(api, title=f"Volume {i}", authors=[author, unique_author()])["book"]["id"] for i in range(5)]
    seen: list[str] = []
    cursor = None
    pages = 0
    while True:
        query = f"/books?author={author.replace(' ', '%20')}&limit=2" + (f"&cursor={cursor}" if cursor else "")
        status, page = api.get(query, user=None)
        assert status == 200, page
        assert len(page["items"]) <= 2
        seen += [item["id"] for item in page["items"]]
        pages += 1
        cursor = page["next_cursor"]
        if not cursor:
            break
    assert sorted(seen) == sorted(created)
    assert seen == list(reversed(created))  # newest first
    assert pages >= 3


def test_author_lookup_folds_case_and_spacing(api: Any) -> None:
    author = unique_author("Folded")
    book = _create(api, authors=[author])["book"]
    status, page = api.get(f"/books?author={author.upper().replace(' ', '%20%20')}", user=None)
    assert status == 200 and [b["id"] for b in page["items"]] == [book["id"]]


def test_update_book_reindexes_authors(api: Any) -> None:
    old, new = unique_author("Old"), unique_author("New")
    book = _create(api, authors=[old])["book"]
    status, updated = api.put(f"/books/{book['id']}", {"title": "Renamed", "authors": [new]})
    assert status == 200, updated
    assert updated["title"] == "Renamed" and updated["authors"] == [new]
    assert api.get(f"/books?author={old.replace(' ', '%20')}", user=None)[1]["items"] == []
    assert [b["id"] for b in api.get(f"/books?author={new.replace(' ', '%20')}", user=None)[1]["items"]] == [book["id"]]


def test_only_the_owner_may_change_a_book(api: Any) -> None:
    book = _create(api, user="alice")["book"]
    assert api.put(f"/books/{book['id']}", {"title": "Mine now"}, user="bob")[0] == 403
    assert api.delete(f"/books/{book['id']}", user="bob")[0] == 403
    assert api.put(f"/books/{book['id']}/cover", raw=jpeg_bytes(), content_type="image/jpeg", user="bob")[0] == 403


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


def test_replace_cover_rejects_mismatched_or_unknown_types(api: Any) -> None:
    book = _create(api)["book"]
    status, body = api.put(f"/books/{book['id']}/cover", raw=image_bytes("PNG"), content_type="image/jpeg")
    assert status == 415 and body["fields"][0]["field"] == "Content-Type"
    status, body = api.put(f"/books/{book['id']}/cover", raw=b"GIF89a....", content_type="image/gif")
    assert status == 415
    status, body = api.put(f"/books/{book['id']}/cover", raw=b"not an image at all", content_type="image/png")
    assert status == 415 and body["fields"][0]["field"] == "body"


def test_subscribers_add_list_remove(api: Any) -> None:
    author, email = unique_author("Subscribed"), unique_email()
    path = f"/authors/{author.replace(' ', '%20')}/subscribers"
    status, created = api.post(path, {"email": email})
    assert status == 201 and created["email"] == email and created["author"] == author
    assert api.post(path, {"email": email})[0] == 201  # idempotent
    status, listed = api.get(path)
    assert status == 200 and [s["email"] for s in listed["items"]] == [email]
    assert api.get(path, user="bob")[1]["items"] == []  # bob sees only his own subscriptions
    assert api.delete(f"{path}/{email}", user="bob")[0] == 404  # as if there were none (no oracle)
    assert api.delete(f"{path}/{email}")[0] == 204
    assert api.get(path)[1]["items"] == []
    assert api.delete(f"{path}/{email}")[0] == 404


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
