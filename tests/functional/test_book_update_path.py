"""`PUT /books/{id}` waits for one AWS call (issue 24, item 1): no read before the write.

Over HTTP to the emulator. The calls a request makes are observed at botocore (they still go
out); failures are injected at the emulator's endpoint at each of the two steps a change of
authors can take (the conditional write, then the transaction that moves the index rows).
"""

from __future__ import annotations

import threading
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import pytest
from helpers import listed, unique_author

from chalicelib.platform.config import get_settings

# The calls are observed process-wide: a worker left running by another test (reading a book for
# its mail) would add its GetItem to the request's.
pytestmark = pytest.mark.usefixtures("paused_workers")


def _create(api: Any, *authors: str, user: str = "alice") -> dict[str, Any]:
    status, payload = api.post("/books", {"title": "Path", "authors": list(authors), "description": "d"}, user=user)
    assert status == 202, payload
    return dict(payload["book"])


def _touches_books(params: dict[str, Any], books_table: str) -> bool:
    if params.get("TableName") == books_table:
        return True
    return any(books_table in str(item) for item in params.get("TransactItems", []))


@contextmanager
def book_calls() -> Iterator[list[str]]:
    """The DynamoDB operations on the books table made while the block runs, in order."""
    from botocore.client import BaseClient

    seen: list[str] = []
    lock = threading.Lock()
    original = BaseClient._make_api_call
    table = get_settings().books_table

    def observed(client: Any, operation: str, params: dict[str, Any]) -> Any:
        if client.meta.service_model.service_name == "dynamodb" and _touches_books(params, table):
            with lock:
                seen.append(operation)
        return original(client, operation, params)

    BaseClient._make_api_call = observed
    try:
        yield seen
    finally:
        BaseClient._make_api_call = original


def test_a_change_that_keeps_the_authors_is_one_conditional_write(api: Any) -> None:
    author = unique_author("One")
    book = _create(api, author)
    with book_calls() as calls:
        status, renamed = api.put(f"/books/{book['id']}", {"title": "Renamed"})
    assert status == 200, renamed
    assert calls == ["UpdateItem"]  # the old path read the book first (GetItem, then a transaction)
    assert renamed["title"] == "Renamed" and renamed["description"] == "d" and renamed["authors"] == [author]
    assert renamed["updated_at"] > book["updated_at"]
    with book_calls() as calls:  # a whole document whose authors are as stored: one write too
        status, whole = api.put(f"/books/{book['id']}", {"title": "Whole", "authors": [author], "description": None})
    assert status == 200 and calls == ["UpdateItem"], (status, whole, calls)
    assert whole["title"] == "Whole" and whole["description"] is None
    assert api.get(f"/books/{book['id']}", user=None)[1]["title"] == "Whole"
    assert listed(api, author) == [book["id"]]


def test_new_authors_take_the_refused_write_and_one_transaction_no_read(api: Any) -> None:
    kept, dropped, added = unique_author("Kept"), unique_author("Dropped"), unique_author("Added")
    book = _create(api, kept, dropped)
    with book_calls() as calls:
        status, updated = api.put(f"/books/{book['id']}", {"authors": [kept, added]})
    assert status == 200, updated
    assert calls == ["UpdateItem", "TransactWriteItems"]  # the refused write answered the book (ALL_OLD)
    assert updated["authors"] == [kept, added] and updated["title"] == "Path"
    assert listed(api, kept) == [book["id"]] and listed(api, dropped) == [] and listed(api, added) == [book["id"]]


def test_404_and_403_come_from_the_refused_write(api: Any) -> None:
    with book_calls() as calls:
        status, body = api.put(f"/books/{uuid.uuid4()}", {"title": "Nobody"})
    assert status == 404 and body["error"] == "NotFound", body
    assert calls[0] == "UpdateItem"  # a missing item answers no ALL_OLD: one read confirms the 404
    book = _create(api, unique_author("Theirs"), user="alice")
    with book_calls() as calls:
        status, body = api.put(f"/books/{book['id']}", {"title": "Mine now", "authors": ["Bob"]}, user="bob")
    assert status == 403 and body["error"] == "Forbidden", body
    assert calls == ["UpdateItem"]
    stored = api.get(f"/books/{book['id']}", user=None)[1]
    assert stored["title"] == "Path" and stored["updated_at"] == book["updated_at"]


def test_an_outage_at_the_write_answers_503_and_changes_nothing(api: Any, faults: Any) -> None:
    author, other = unique_author("Outage"), unique_author("Other")
    book = _create(api, author)
    for change in ({"title": "Lost"}, {"title": "Lost", "authors": [other]}):
        faults.add(service="dynamodb", action="UpdateItem", code="ServiceUnavailable", status=503)
        status, body = api.put(f"/books/{book['id']}", change)
        faults.clear()
        assert status == 503 and body["error"] == "ServiceUnavailable", body
        stored = api.get(f"/books/{book['id']}", user=None)[1]
        assert stored["title"] == "Path" and stored["updated_at"] == book["updated_at"]
        assert listed(api, author) == [book["id"]] and listed(api, other) == []


def test_a_write_after_a_one_call_update_sees_the_new_revision(api: Any, monkeypatch: Any) -> None:
    """The one-call write bumps the revision too: a request that read the book before it
    (here a change of authors whose refused write met the older revision) gets 409."""
    from chalicelib.books import service as books

    author, other = unique_author("Rev"), unique_author("RevOther")
    book = _create(api, author)
    before = books.get_book(book["id"])
    assert api.put(f"/books/{book['id']}", {"description": "first"})[0] == 200
    monkeypatch.setattr(books, "_stored", lambda _id, _refused: before)
    status, body = api.put(f"/books/{book['id']}", {"authors": [other]})
    monkeypatch.undo()
    assert status == 409 and body["error"] == "Conflict", body
    stored = api.get(f"/books/{book['id']}", user=None)[1]
    assert stored["description"] == "first" and stored["authors"] == [author]
    assert listed(api, author) == [book["id"]] and listed(api, other) == []
