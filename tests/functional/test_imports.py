"""POST /imports and GET /imports/{id} over real HTTP, with the local event source runner.

Each book is created by a chord member; the chord's callback writes the report exactly once.
"""

from __future__ import annotations

import json
import time
import uuid
from typing import Any, cast

import pytest
from helpers import eventually, unique_author

from chalicelib.imports.models import ImportItem
from chalicelib.tasks import canvas
from chalicelib.tasks.chord_store import ChordItem, head_key
from chalicelib.tasks.envelope import Envelope
from chalicelib.tasks.models import TaskRecord


def _finished(api: Any, import_id: str, timeout: float = 90) -> dict[str, Any]:
    def check() -> dict[str, Any] | None:
        status, body = api.get(f"/imports/{import_id}")
        assert status == 200, body
        return body if body["import"]["status"] == "finished" else None

    return cast("dict[str, Any]", eventually(check, timeout=timeout, interval=0.5, what=f"import {import_id} finished"))


def test_import_creates_the_valid_books_and_reports_each_item(api: Any, paused_workers: Any) -> None:
    author = unique_author("Import")
    books = [
        {"title": "First", "authors": [author]},
        {"title": "", "authors": [author]},  # invalid: empty title
        {"title": "With upload", "authors": [author], "cover_upload": {"content_type": "image/png", "size": 2048}},
        {"title": "Inline cover", "authors": [author], "cover": "aGVsbG8="},  # refused in an import
        {"title": "Huge upload", "authors": [author], "cover_upload": {"content_type": "image/png", "size": 10**12}},
        "not an object",
    ]
    status, body = api.post("/imports", {"books": books})
    assert status == 202, body
    import_id = body["import"]["id"]
    assert body["import"] == {"id": import_id, "status": "running", "total": 6}
    assert [item["index"] for item in body["invalid"]] == [1, 3, 5]
    assert body["invalid"][0]["errors"][0]["field"] == "title"
    assert body["invalid"][1]["errors"] == [
        {"field": "cover", "message": "an import takes no inline cover; use cover_upload"}
    ]
    status, running = api.get(f"/imports/{import_id}")
    assert status == 200 and running["import"]["status"] == "running" and running["items"] == []
    assert running["import"]["created"] is None and running["import"]["done"] == 3
    assert api.get(f"/imports/{import_id}", user="bob")[0] == 404
    assert api.get(f"/imports/{import_id}", user="admin")[0] == 404

    paused_workers.resume()
    report = _finished(api, import_id)
    assert report["import"]["created"] == 2 and report["import"]["failed"] == 4 and report["import"]["total"] == 6
    items = report["items"]
    assert [item["index"] for item in items] == list(range(6))
    assert [item["status"] for item in items] == ["created", "failed", "created", "failed", "failed", "failed"]
    for index in (0, 2):
        status, book = api.get(f"/books/{items[index]['book_id']}")
        assert status == 200 and book["owner"] == "alice" and book["authors"] == [author]
    assert items[2]["upload"]["url"] and items[2]["upload"]["fields"]
    assert "upload" not in items[0]
    assert "larger than" in items[4]["errors"][0]["message"]  # refused by the book service: reported, not retried
    assert items[5]["errors"][0]["field"] == "body"
    assert api.get(f"/imports/{import_id}", user="bob")[0] == 404


def test_import_refuses_a_bad_body_in_the_one_error_shape(api: Any) -> None:
    body: Any
    for body in ({"books": []}, {"books": [{}] * 501}, {"books": "x"}, {"other": 1}, []):
        status, answer = api.post("/imports", body)
        assert status == 422, (body, answer)
        assert set(answer) == {"error", "message", "fields"}
    assert api.get(f"/imports/{uuid.uuid4()}")[0] == 404


def _post_with_key(api: Any, body: Any, key: str) -> tuple[int, Any]:
    response = api.request(
        "post", "/imports", {**api.headers("alice"), "Idempotency-Key": key}, json.dumps(body).encode()
    )
    return response.status_code, response.json()


def test_idempotency_key_replays_the_same_import(api: Any, workers: Any) -> None:
    author = unique_author("Idem")
    body = {"books": [{"title": "Once", "authors": [author]}]}
    key = f"import-{uuid.uuid4()}"
    first = _post_with_key(api, body, key)
    again = _post_with_key(api, body, key)
    assert first[0] == again[0] == 202 and first[1] == again[1]
    other = _post_with_key(api, {"books": [{"title": "Other", "authors": [author]}]}, key)
    assert other[0] == 422
    report = _finished(api, first[1]["import"]["id"])
    assert report["import"]["created"] == 1
    status, listed = api.get(f"/books?author={author}")
    assert status == 200 and len(listed["items"]) == 1


@pytest.mark.slow  # a scale test (about 100 s here): `make test-scale`; test_canvas covers duplicates mid-chord
def test_500_books_finish_with_exactly_one_report_despite_duplicates(
    api: Any, workers: Any, aws: Any, settings: Any
) -> None:
    from chalicelib.platform.sqs import queue_url

    author = unique_author("Bulk")
    books = [{"title": f"Book {i}", "authors": [author]} for i in range(500)]
    status, body = api.post("/imports", {"books": books})
    assert status == 202, body
    import_id = body["import"]["id"]
    report = _finished(api, import_id, timeout=600)
    assert report["import"]["created"] == 500 and report["import"]["failed"] == 0
    ids = [item["book_id"] for item in report["items"]]
    assert len(set(ids)) == 500
    # Duplicate deliveries after the end: some members and the callback itself, once more.
    head = ChordItem.get(head_key(import_id), consistent_read=True)
    for i in range(0, 500, 50):
        record = TaskRecord.get(canvas._ident(import_id, "member", i))
        env = Envelope(record.id, record.name, list(record.args), dict(record.kwargs), links=record.links)
        aws("sqs").send_message(QueueUrl=queue_url(settings.default.name), MessageBody=env.encode())
    unlock = Envelope(str(head.callback_id), canvas.UNLOCK_TASK, [import_id])
    aws("sqs").send_message(QueueUrl=queue_url(settings.default.name), MessageBody=unlock.encode())
    time.sleep(5)
    stored = ImportItem.get(import_id, consistent_read=True)
    assert stored.report_writes == 1, "the report was written more than once"
    head = ChordItem.get(head_key(import_id), consistent_read=True)
    assert (head.total, head.done, head.dispatched) == (500, 500, 1)
    status, listed = api.get(f"/books?author={author}&limit=100")
    assert status == 200 and len(listed["items"]) == 100 and listed["next_cursor"]
