"""The DynamoDB book store means what the in-memory store means (over the emulator), so the book
rules' unit tests over memory (tests/unit/test_book_units.py) hold for the deployed store.

Every test runs against both stores with the same inputs and the same assertions. The sends
are recorded instead of going to SQS (`dispatch.launch`); the task records a test staged in
DynamoDB are deleted after it, so the outbox relay of a later test never finds them.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterator, Sequence
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from chalicelib import app_tasks  # noqa: F401 - registers the tasks named by the service
from chalicelib.books import service
from chalicelib.books.models import Book
from chalicelib.books.schemas import CoverUpload
from chalicelib.books.store import REFUSED, BookStore, DynamoBookStore, Extras, MemoryBookStore, sort_key
from chalicelib.covers.upload import service as uploads
from chalicelib.platform import idempotency
from chalicelib.platform.transactions import TransactionCancelled
from chalicelib.tasks import dispatch, outbox
from chalicelib.tasks.models import TaskRecord
from chalicelib.tasks.registry import Signature, get_task

CREATED = datetime(2026, 1, 2, 3, 4, 5, 600000, tzinfo=UTC)
NOW = datetime(2026, 2, 3, 4, 5, 6, 700000, tzinfo=UTC)


class Launches:
    """The messages each write started sending (the double stands for `dispatch.launch`)."""

    def __init__(self) -> None:
        self.sent: list[list[outbox.Outgoing]] = []

    def launch(self, messages: Sequence[outbox.Outgoing]) -> None:
        self.sent.append(list(messages))


@pytest.fixture(params=["dynamo", "memory"])
def store(request: pytest.FixtureRequest) -> BookStore:
    return DynamoBookStore() if request.param == "dynamo" else MemoryBookStore()


@pytest.fixture
def launches(store: BookStore, monkeypatch: pytest.MonkeyPatch) -> Iterator[Launches]:
    recorded = Launches()
    monkeypatch.setattr(dispatch, "launch", recorded.launch)
    yield recorded
    if isinstance(store, DynamoBookStore):
        for message in (m for sent in recorded.sent for m in sent):
            TaskRecord(message.envelope.task_id).delete()


def _key() -> str:
    return f"store-{uuid.uuid4()}"


def _book(*keys: str, owner: str = "alice", created: datetime = CREATED, revision: int | None = 1) -> Book:
    book = Book(str(uuid.uuid4()), owner=owner, title="T", authors=list(keys), description="d", created_at=created)
    book.updated_at, book.revision = created, revision
    return book


def _fields(book: Book | None) -> dict[str, Any] | None:
    return None if book is None else dict(book.attribute_values)


def _refused(exc: pytest.ExceptionInfo[TransactionCancelled]) -> dict[str, str]:
    return exc.value.failed


def _staged(store: BookStore, task_id: str) -> bool:
    """A task's record was committed with the write (in the table, or in the memory store)."""
    if isinstance(store, MemoryBookStore):
        return task_id in store.tasks or task_id in store.pending
    try:
        TaskRecord.get(task_id, consistent_read=True)
    except TaskRecord.DoesNotExist:
        return False
    return True


def _ids(store: BookStore, key: str, limit: int = 100, start: dict[str, Any] | None = None) -> list[str]:
    return [book.id for book in store.by_author(key, limit, start).books]


def test_a_new_book_is_written_with_an_index_row_per_author(store: BookStore, launches: Launches) -> None:
    first, second = _key(), _key()
    book = _book(first, second)
    store.create(book, [first, second], Extras("alice"))
    assert _fields(store.get(book.id)) == _fields(book)
    assert _ids(store, first) == _ids(store, second) == [book.id]
    with pytest.raises(TransactionCancelled) as taken:
        store.create(book, [first], Extras("alice"))
    assert _refused(taken) == {"book": REFUSED}
    assert launches.sent == [[], []]  # every write starts its sends (here none) before it is decided


def test_a_missing_book_reads_and_updates_as_none(store: BookStore) -> None:
    assert store.get(str(uuid.uuid4())) is None
    assert store.update(str(uuid.uuid4()), "alice", {"title": "X"}, NOW) == (None, None)


def test_an_authors_books_page_newest_first(store: BookStore, launches: Launches) -> None:
    key = _key()
    made = [_book(key, created=CREATED + timedelta(seconds=n)) for n in range(3)]
    for book in made:
        store.create(book, [key], Extras("alice"))
    first = store.by_author(key, 2, None)
    assert [b.id for b in first.books] == [made[2].id, made[1].id]
    assert first.last_key == {"author_key": {"S": key}, "sort_key": {"S": sort_key(made[1])}}
    rest = store.by_author(key, 2, first.last_key)
    assert [b.id for b in rest.books] == [made[0].id] and rest.last_key is None
    whole = store.by_author(key, 3, None)
    assert len(whole.books) == 3 and whole.last_key is None  # as the emulator answers (see `_page`)
    assert store.by_author(_key(), 2, None).books == []


def test_a_scan_reaches_every_book_once(store: BookStore, launches: Launches) -> None:
    key = _key()
    made = [_book(key) for _ in range(3)]
    for book in made:
        store.create(book, [key], Extras("alice"))
    ids = {book.id for book in made}
    seen: list[str] = []
    start: dict[str, Any] | None = None
    for _ in range(1000):
        page = store.scan(25, start)
        assert len(page.books) <= 25
        seen += [b.id for b in page.books if b.id in ids]
        if (start := page.last_key) is None:
            break
    assert sorted(seen) == sorted(ids)


def test_the_one_call_update_writes_or_answers_the_book_as_it_was(store: BookStore, launches: Launches) -> None:
    key = _key()
    book = _book(key)
    store.create(book, [key], Extras("alice"))
    written, old = store.update(book.id, "alice", {"title": "New", "description": None}, NOW)
    assert old is None and written is not None
    values = _fields(written) or {}
    assert (values["title"], values["revision"], values["updated_at"]) == ("New", 2, NOW)
    assert "description" not in values  # removed
    assert _fields(store.get(book.id)) == _fields(written)
    written, old = store.update(book.id, "bob", {"title": "Theirs"}, NOW)
    assert written is None and _fields(old) == _fields(store.get(book.id))
    written, old = store.update(book.id, "alice", {"authors": ["Other"]}, NOW)  # the index would be wrong
    assert written is None and old is not None and old.revision == 2
    written, old = store.update(book.id, "alice", {"authors": [key], "title": "Same authors"}, NOW)
    assert old is None and written is not None and (written.title, written.revision) == ("Same authors", 3)


def test_a_book_without_a_revision_counts_as_revision_zero(store: BookStore, launches: Launches) -> None:
    key = _key()
    book = _book(key, revision=None)
    store.create(book, [key], Extras("alice"))
    written, _ = store.update(book.id, "alice", {"title": "New"}, NOW)
    assert written is not None and written.revision == 1
    legacy = _book(key, revision=None)
    store.create(legacy, [key], Extras("alice"))
    store.reindex(legacy, "alice", {"title": "Moved", "revision": 1}, [], [])
    assert store.get(legacy.id).revision == 1  # type: ignore[union-attr]


def test_reindex_moves_the_rows_only_from_the_revision_read(store: BookStore, launches: Launches) -> None:
    kept, dropped, added = _key(), _key(), _key()
    book = _book(kept, dropped)
    store.create(book, [kept, dropped], Extras("alice"))
    with pytest.raises(TransactionCancelled) as theirs:
        store.reindex(book, "bob", {"authors": [kept, added], "revision": 2}, [dropped], [added])
    assert _refused(theirs) == {"book": REFUSED}
    stale = _book(kept, dropped, revision=7)
    stale.id, stale.created_at = book.id, book.created_at
    with pytest.raises(TransactionCancelled) as late:
        store.reindex(stale, "alice", {"authors": [kept, added], "revision": 8}, [dropped], [added])
    assert _refused(late) == {"book": REFUSED}
    assert _ids(store, dropped) == [book.id] and _ids(store, added) == []
    store.reindex(book, "alice", {"updated_at": NOW, "revision": 2, "authors": [kept, added]}, [dropped], [added])
    assert _ids(store, kept) == _ids(store, added) == [book.id] and _ids(store, dropped) == []
    moved = store.get(book.id)
    values = _fields(moved) or {}
    assert (values["authors"], values["revision"], values["updated_at"]) == ([kept, added], 2, NOW)


def test_delete_takes_the_book_and_its_rows_only_from_the_revision_read(store: BookStore, launches: Launches) -> None:
    first, second = _key(), _key()
    book = _book(first, second)
    store.create(book, [first, second], Extras("alice"))
    stale = _book(first, second, revision=2)
    stale.id, stale.created_at = book.id, book.created_at
    for read, owner in ((book, "bob"), (stale, "alice")):
        with pytest.raises(TransactionCancelled) as refused:
            store.delete(read, owner, [first, second])
        assert _refused(refused) == {"book": REFUSED}
    assert _ids(store, first) == [book.id]
    store.delete(book, "alice", [first, second])
    assert store.get(book.id) is None and _ids(store, first) == _ids(store, second) == []


def test_a_key_is_claimed_once_with_its_answer(store: BookStore, launches: Launches) -> None:
    key = _key()
    claim: idempotency.Claim[dict[str, Any]] | None = idempotency.claim_for(
        str(uuid.uuid4()), "alice", "POST /books", b"request"
    )
    assert claim is not None and store.claimed(claim.key) is None
    book = _book(key)
    store.create(book, [key], Extras("alice", claim, {"book": {"id": book.id}}))
    record = store.claimed(claim.key)
    assert record is not None and (record.fingerprint, record.response) == (
        claim.fingerprint,
        {"book": {"id": book.id}},
    )
    twin = _book(key)
    with pytest.raises(TransactionCancelled) as used:
        store.create(twin, [key], Extras("alice", claim, {"book": {"id": twin.id}}))
    assert _refused(used) == {idempotency.LABEL: REFUSED}
    assert store.get(twin.id) is None and _ids(store, key) == [book.id]
    with pytest.raises(TransactionCancelled) as both:
        store.revise(book.id, "alice", 5, {"title": "X"}, Extras("alice", claim))
    assert _refused(both) == {idempotency.LABEL: REFUSED, "book": REFUSED}


def _resize(book: Book) -> Signature:
    return get_task(service.RESIZE_TASK).s(book.id, 1)


def test_a_revision_commits_its_tasks_and_upload_and_starts_their_sends(store: BookStore, launches: Launches) -> None:
    key = _key()
    book = _book(key)
    store.create(book, [key], Extras("alice"))
    upload = uploads.begin(book, CoverUpload(content_type="image/png", size=9), "size")
    signatures = [_resize(book), *upload.signatures]
    changes = {**upload.changes, "updated_at": NOW, "revision": 2}
    with pytest.raises(TransactionCancelled) as stale:
        store.revise(book.id, "alice", 3, changes, Extras("alice", tasks=signatures, upload=upload))
    assert _refused(stale) == {"book": REFUSED}
    assert not any(_staged(store, sig.task_id) for sig in signatures) and not _staged(store, upload.ingest.task_id)
    store.revise(book.id, "alice", 1, changes, Extras("alice", tasks=signatures, upload=upload))
    revised = store.get(book.id)
    assert revised is not None and (revised.cover_status, revised.cover_version, revised.revision) == (
        "awaiting_upload",
        1,
        2,
    )
    assert all(_staged(store, sig.task_id) for sig in signatures) and _staged(store, upload.ingest.task_id)
    last = launches.sent[-1]
    assert [m.envelope.task_id for m in last] == [sig.task_id for sig in signatures]
    assert all(m.envelope.staged for m in last)  # a worker waits for the commit of a staged message
    if isinstance(store, DynamoBookStore):
        TaskRecord(upload.ingest.task_id).delete()
