"""Book writes that must stay consistent, decided by the service over the memory store:
Idempotency-Key checks, stale revisions, author index rows, nulls, a resent task's delay and the
task listing's cursor. The transaction on DynamoDB under races and faults is in
tests/functional/test_data_integrity.py; both stores keep one contract (test_book_store.py)."""

from __future__ import annotations

import uuid
from typing import Any

from helpers import listed, made_book, post_with_key, unique_author

from chalicelib.tasks.models import TaskRecord


def test_null_for_a_required_field_is_422_and_the_index_is_untouched(api: Any) -> None:
    author = unique_author("Nulls")
    book = made_book(api, author, "Integrity", description="kept")["book"]
    for field in ("authors", "title"):
        status, body = api.put(f"/books/{book['id']}", {field: None})
        assert status == 422 and [f["field"] for f in body["fields"]] == [field], body
        assert set(body) == {"error", "message", "fields"}
    assert listed(api, author) == [book["id"]]
    status, stored = api.get(f"/books/{book['id']}", user=None)
    assert stored["title"] == "Integrity" and stored["description"] == "kept"


def test_null_description_clears_it(api: Any) -> None:
    book = made_book(api, unique_author(), "Integrity", description="to be cleared")["book"]
    status, updated = api.put(f"/books/{book['id']}", {"description": None})
    assert status == 200 and updated["description"] is None
    assert api.get(f"/books/{book['id']}", user=None)[1]["description"] is None


def test_changing_authors_moves_the_index_rows(api: Any) -> None:
    kept, dropped, added = unique_author("Kept"), unique_author("Dropped"), unique_author("Added")
    status, payload = api.post("/books", {"title": "Moves", "authors": [kept, dropped]})
    book_id = payload["book"]["id"]
    status, updated = api.put(f"/books/{book_id}", {"authors": [kept.upper(), added]})
    assert status == 200 and updated["authors"] == [kept.upper(), added]
    assert listed(api, kept) == [book_id]
    assert listed(api, dropped) == []
    assert listed(api, added) == [book_id]


def test_an_update_from_a_stale_read_is_a_conflict(api: Any, monkeypatch: Any) -> None:
    """Two updates that read the same revision: the second to commit gets 409, not a lost update."""
    from chalicelib.books import service as books

    author = unique_author("Race")
    book_id = made_book(api, author, "Integrity")["book"]["id"]
    stale = books.get_book(book_id)  # what the slower request's refused write met (ALL_OLD)
    assert api.put(f"/books/{book_id}", {"title": "First writer"})[0] == 200
    monkeypatch.setattr(books, "_stored", lambda _id, _refused: stale)
    status, body = api.put(f"/books/{book_id}", {"title": "Second writer", "authors": [unique_author()]})
    monkeypatch.undo()
    assert status == 409 and body["error"] == "Conflict"
    current = api.get(f"/books/{book_id}", user=None)[1]
    assert current["title"] == "First writer" and listed(api, author) == [book_id]


def test_same_idempotency_key_with_another_body_is_422(api: Any) -> None:
    key = f"k-{uuid.uuid4()}"
    status, first = post_with_key(api, {"title": "One", "authors": [unique_author()]}, key)
    assert status == 202
    status, body = post_with_key(api, {"title": "Two", "authors": [unique_author()]}, key)
    assert status == 422 and body["fields"][0]["field"] == "Idempotency-Key"
    # Keys are per user: bob's request with alice's key is his own.
    status, bobs = post_with_key(api, {"title": "One", "authors": [unique_author()]}, key, user="bob")
    assert status == 202 and bobs["book"]["id"] != first["book"]["id"]


def test_invalid_idempotency_key_is_422(api: Any) -> None:
    for key in ("", "x" * 256, "with space"):
        status, body = post_with_key(api, {"title": "Bad key", "authors": [unique_author()]}, key)
        assert status == 422 and body["fields"][0]["field"] == "Idempotency-Key", (key, body)


def test_a_resent_task_gets_the_delay_it_has_left_within_what_sqs_allows() -> None:
    from chalicelib.tasks import outbox

    def record(eta: float | None) -> TaskRecord:
        return TaskRecord("t-1", name="tests.integrity.noop", queue="default", status="PENDING", outbox_eta=eta)

    assert outbox.resend_of(record(None), 1_000).countdown == 0
    assert outbox.resend_of(record(1_600), 1_000).countdown == 600
    assert outbox.resend_of(record(1_000.2), 1_000).countdown == 1
    assert outbox.resend_of(record(900), 1_000).countdown == 0  # overdue: at once
    assert outbox.resend_of(record(9_000), 1_000).countdown == 900  # SQS's limit; the task checks its own time


def test_task_listing_refuses_a_forged_cursor(api: Any) -> None:
    from chalicelib.platform.pagination import encode_cursor, listing_scope

    for key in (
        {"created_day": {"S": "9999-12-31"}},
        {"created_day": {"S": "not-a-day"}},
        {"created_day": {"S": "2026-01-01"}, "foo": {"S": "x"}},
    ):
        cursor = encode_cursor(key, listing_scope("tasks"))
        status, body = api.get(f"/tasks?cursor={cursor}", user="admin")
        assert 400 <= status < 500 and body["fields"][0]["field"] == "cursor", (key, body)
