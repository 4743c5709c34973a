"""The book rules over the in-memory store: no AWS, no emulator.

Create, read, list by author, update, delete, replace the cover and the Idempotency-Key's replay,
as `books/service.py` decides them. The same service runs over DynamoDB in the deployed code
(tests/functional/test_api_books.py over HTTP), and the two stores are held to one contract by
tests/functional/test_book_store.py. The sends and S3 are recording doubles.
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from typing import Any

import pytest
from inprocess import Sends

from chalicelib import app_tasks  # noqa: F401 - registers the tasks the service sends by name
from chalicelib.books import answers, service
from chalicelib.books import store as books
from chalicelib.books.schemas import BookCreate, BookUpdate, CoverUpload
from chalicelib.books.store import MemoryBookStore
from chalicelib.platform import idempotency
from chalicelib.platform.errors import Conflict, Forbidden, NotFound, ValidationFailed
from chalicelib.platform.schemas import Page

pytestmark = pytest.mark.unit

AUTHOR = "Ursula K. Le Guin"
KEY = "ursula k. le guin"
PNG = b"\x89PNG\r\n\x1a\n" + bytes(64)


@pytest.fixture
def store() -> Iterator[MemoryBookStore]:
    memory = MemoryBookStore()
    books.configure(memory)
    yield memory
    books.configure(None)


@pytest.fixture
def sent(monkeypatch: pytest.MonkeyPatch) -> Sends:
    doubles = Sends()
    doubles.install(monkeypatch)
    return doubles


def _create(owner: str = "alice", *authors: str, **fields: Any) -> answers.BookAccepted:
    body = BookCreate.model_validate({"title": "The Dispossessed", "authors": list(authors or [AUTHOR]), **fields})
    return service.create_book(owner, body)


def _listed(author: str, limit: int = 100, cursor: str | None = None) -> tuple[list[str], str | None]:
    page = service.list_books(author, Page(limit=limit, cursor=cursor))
    return [book["id"] for book in page["items"]], page["next_cursor"]


def test_a_new_book_has_an_index_row_per_author_and_its_tasks_staged(store: MemoryBookStore, sent: Sends) -> None:
    answer = _create("alice", AUTHOR, "Frank Herbert")
    book = answer["book"]
    assert (book["owner"], book["cover_status"], book["authors"]) == ("alice", "none", [AUTHOR, "Frank Herbert"])
    assert sorted(key for key, _ in store.index) == ["frank herbert", KEY]
    assert set(store.index.values()) == {book["id"]}
    assert list(store.tasks) == answer["tasks"]  # the notification's record, committed with the book
    assert sent.launches == [[(service.NOTIFY_TASK, (book["id"],))]]
    assert service.view(service.get_book(book["id"])) == book


def test_a_direct_upload_stages_its_pending_ingest_with_the_book(store: MemoryBookStore, sent: Sends) -> None:
    answer = _create("alice", cover_upload={"content_type": "image/jpeg", "size": 9})
    ingest, *_ = answer["tasks"]
    assert list(store.pending) == [ingest]  # S3 sends its message, not the outbox
    assert answer["book"]["cover_status"] == "awaiting_upload" and "upload" in answer


def test_a_missing_book_is_404(store: MemoryBookStore, sent: Sends) -> None:
    with pytest.raises(NotFound):
        service.get_book("no-such-book")
    with pytest.raises(NotFound):
        service.update_book("no-such-book", "alice", BookUpdate(title="Nobody"))


def test_an_authors_books_are_listed_newest_first_page_by_page(store: MemoryBookStore, sent: Sends) -> None:
    made = []
    for _ in range(5):
        made.append(_create()["book"]["id"])
        time.sleep(0.002)  # distinct creation times
    _create("alice", "Someone Else")
    first, cursor = _listed(AUTHOR, limit=2)
    second, cursor2 = _listed(AUTHOR, limit=2, cursor=cursor)
    third, last = _listed(AUTHOR, limit=2, cursor=cursor2)
    assert first + second + third == made[::-1] and last is None
    everything, end = _listed(AUTHOR)
    assert everything == made[::-1] and end is None


def test_every_book_is_listed_once_across_pages(store: MemoryBookStore, sent: Sends) -> None:
    made = {_create("alice", f"Author {n}")["book"]["id"] for n in range(5)}
    seen: list[str] = []
    cursor = None
    while True:
        page = service.list_books(None, Page(limit=2, cursor=cursor))
        seen += [book["id"] for book in page["items"]]
        if (cursor := page["next_cursor"]) is None:
            break
    assert sorted(seen) == sorted(made)


def _counted(calls: list[str], name: str, method: Any) -> Any:
    def counted(*args: Any) -> Any:
        calls.append(name)
        return method(*args)

    return counted


def test_a_change_of_one_field_is_one_write(store: MemoryBookStore, sent: Sends, monkeypatch: Any) -> None:
    book = _create()["book"]
    writes: list[str] = []
    for name in ("update", "reindex", "get"):  # the write, the transaction, a read: only the write
        monkeypatch.setattr(store, name, _counted(writes, name, getattr(store, name)))
    renamed = service.update_book(book["id"], "alice", BookUpdate(title="Renamed"))
    assert writes == ["update"]
    assert renamed["title"] == "Renamed" and renamed["authors"] == [AUTHOR] and renamed["description"] is None
    assert renamed["updated_at"] > book["updated_at"]
    assert store.get(book["id"]).revision == 2  # type: ignore[union-attr]
    assert service.view(service.get_book(book["id"])) == renamed


def test_new_authors_move_the_index_rows(store: MemoryBookStore, sent: Sends) -> None:
    book = _create("alice", AUTHOR, "Kept")["book"]
    updated = service.update_book(book["id"], "alice", BookUpdate(authors=["Kept", "Added"]))
    assert updated["authors"] == ["Kept", "Added"] and updated["title"] == "The Dispossessed"
    assert _listed(AUTHOR)[0] == [] and _listed("Kept")[0] == [book["id"]] and _listed("Added")[0] == [book["id"]]
    assert sorted(key for key, _ in store.index) == ["added", "kept"]
    assert service.view(service.get_book(book["id"])) == updated


def test_another_owner_cannot_update_and_nothing_changes(store: MemoryBookStore, sent: Sends) -> None:
    book = _create()["book"]
    for change in (BookUpdate(title="Mine now"), BookUpdate(title="Mine now", authors=["Bob"])):
        with pytest.raises(Forbidden):
            service.update_book(book["id"], "bob", change)
    assert service.view(service.get_book(book["id"])) == book


def test_an_update_from_a_stale_read_is_a_conflict(store: MemoryBookStore, sent: Sends, monkeypatch: Any) -> None:
    book = _create()["book"]
    stale = service.get_book(book["id"])
    service.update_book(book["id"], "alice", BookUpdate(description="first"))
    stored = service._stored
    monkeypatch.setattr(service, "_stored", lambda _id, _refused: stale)  # the slower request's read
    with pytest.raises(Conflict):
        service.update_book(book["id"], "alice", BookUpdate(authors=["Someone Else"]))
    monkeypatch.setattr(service, "_stored", stored)
    current = service.get_book(book["id"])
    assert current.description == "first" and list(current.authors) == [AUTHOR]
    assert _listed(AUTHOR)[0] == [book["id"]] and _listed("Someone Else")[0] == []


def test_delete_removes_the_book_and_its_index_rows_only_for_its_owner(store: MemoryBookStore, sent: Sends) -> None:
    book = _create("alice", AUTHOR, "Frank Herbert")["book"]
    with pytest.raises(Forbidden):
        service.delete_book(book["id"], "bob")
    assert len(store.index) == 2
    service.delete_book(book["id"], "alice")
    assert store.books == {} and store.index == {}
    assert sent.deleted == [f"covers/{book['id']}/"]
    with pytest.raises(NotFound):
        service.get_book(book["id"])


def test_a_retry_with_the_same_key_gets_the_first_answer(store: MemoryBookStore, sent: Sends) -> None:
    body = BookCreate(title="Once", authors=[AUTHOR])
    first = service.create_book("alice", body, "key-1")
    again = service.create_book("alice", body, "key-1")
    assert again == first and len(store.books) == 1 and len(store.claims) == 1
    with pytest.raises(ValidationFailed) as refused:
        service.create_book("alice", BookCreate(title="Another", authors=[AUTHOR]), "key-1")
    assert refused.value.fields == [
        {"field": "Idempotency-Key", "message": "reuse a key only to retry the same request"}
    ]
    assert len(store.books) == 1
    other = service.create_book("bob", body, "key-1")  # a key is the caller's own
    assert other["book"]["id"] != first["book"]["id"]


def test_a_new_cover_bumps_the_version_and_stages_its_resize(store: MemoryBookStore, sent: Sends) -> None:
    book = _create()["book"]
    answer = service.replace_cover(book["id"], "alice", PNG, "image/png", "cover-key")
    cover = answer["book"]["cover"]
    assert (cover["version"], cover["status"]) == (1, "pending")
    assert sent.launches[-1] == [(service.RESIZE_TASK, (book["id"], 1))]
    assert answer["tasks"][0] in store.tasks
    stored = service.get_book(book["id"])
    assert stored.cover_key in sent.objects and stored.revision == 2
    assert service.replace_cover(book["id"], "alice", PNG, "image/png", "cover-key") == answer  # replayed
    with pytest.raises(Forbidden):
        service.replace_cover(book["id"], "bob", PNG, "image/png")
    second = service.replace_cover(book["id"], "alice", PNG, "image/png")
    assert second["book"]["cover"]["version"] == 2 and len(sent.objects) == 2


def test_a_direct_upload_for_an_existing_book_is_one_write_with_its_ingest(store: MemoryBookStore, sent: Sends) -> None:
    book = _create()["book"]
    answer = service.start_cover_upload(book["id"], "alice", CoverUpload(content_type="image/png", size=9))
    assert answer["tasks"] == list(store.pending)
    stored = service.get_book(book["id"])
    assert (stored.cover_status, stored.cover_version, stored.revision) == ("awaiting_upload", 1, 2)
    with pytest.raises(Forbidden):
        service.start_cover_upload(book["id"], "bob", CoverUpload(content_type="image/png", size=9))


def test_configuring_the_store_points_the_replay_at_its_records_and_none_restores_dynamodb() -> None:
    memory = MemoryBookStore()
    books.configure(memory)
    try:
        assert isinstance(books.current(), MemoryBookStore)
        assert idempotency._READER.current() == memory.claimed
    finally:
        books.configure(None)
    assert isinstance(books.current(), books.DynamoBookStore)
    assert idempotency._READER.current() is idempotency.read
