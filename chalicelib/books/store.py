"""Where books live: a small persistence interface and its two implementations.

The rules (who may write, which index rows a book has, what a refused write means) are in
`service.py`; a store applies one write atomically when its precondition holds, as
`subscriptions/store.py` does. A transactional write also carries what other modules stage
in the same transaction (`Extras`: the Idempotency-Key record, the outbox's task records, a
direct upload's pending record) and starts the tasks' sends as it commits. A refused write
raises `TransactionCancelled` with the labels of what failed ("book", `idempotency.LABEL`,
"task:<id>"), from either store. `DynamoBookStore` is the deployed one; `MemoryBookStore`
lets unit tests drive the service with no AWS at all. The service asks `current()`.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, Protocol

from pynamodb.exceptions import DoesNotExist

from chalicelib.books.models import Book, BookAuthor
from chalicelib.covers.upload import service as uploads
from chalicelib.platform import idempotency
from chalicelib.platform.dynamodb import update_or_old
from chalicelib.platform.idempotency_model import IdempotencyRecord
from chalicelib.platform.seam import Seam
from chalicelib.platform.transactions import Transaction, TransactionCancelled, transaction
from chalicelib.tasks import dispatch, outbox
from chalicelib.tasks.envelope import Envelope
from chalicelib.tasks.registry import Signature

REFUSED = "ConditionalCheckFailed"  # the reason DynamoDB gives for a condition that failed


@dataclass(frozen=True)
class Extras:
    """What a book's write commits with it: the key's record (`claim`, answered by `answer`),
    the PENDING records of `tasks` (sent while the write commits) and a direct upload's record."""

    owner: str
    claim: idempotency.Claim[Mapping[str, Any]] | None = None
    answer: Mapping[str, Any] = field(default_factory=dict)
    status_code: int = 202
    tasks: Sequence[Signature] = ()
    upload: uploads.Upload | None = None


@dataclass(frozen=True)
class Listing:
    """One page of books and the key to start the next one after (None: no more)."""

    books: list[Book]
    last_key: dict[str, Any] | None


def sort_key(book: Book) -> str:
    """An index row's sort key: newest first when read backwards, unique per book."""
    return f"{book.created_at.isoformat()}#{book.id}"


class BookStore(Protocol):
    """Persistence of books and their author index rows; every write is atomic.

    `changes` map a field to its new value (None removes it). A `revision` guard holds when
    the book is the owner's and at that revision (None: a book written before revisions).
    """

    def get(self, book_id: str) -> Book | None:
        """The book (a strongly consistent read), or None."""
        ...

    def by_author(self, key: str, limit: int, start: dict[str, Any] | None) -> Listing:
        """Up to `limit` books of one author key, newest first, after `start`."""
        ...

    def scan(self, limit: int, start: dict[str, Any] | None) -> Listing:
        """Up to `limit` books of any author, in the store's order, after `start`."""
        ...

    def update(
        self, book_id: str, owner: str, changes: dict[str, Any], now: datetime
    ) -> tuple[Book | None, Book | None]:
        """One conditional write: `changes`, `updated_at` and the next revision, if the book is
        the owner's and (when `changes` has authors) already has those authors, so its index
        rows stay right. (the book as written, None), or (None, the book as it was when
        refused); (None, None) when there is no book."""
        ...

    def create(self, book: Book, keys: Sequence[str], extras: Extras) -> outbox.Launch | None:
        """A new book, its index rows under `keys` and `extras`; its tasks' sends, started."""
        ...

    def reindex(self, book: Book, owner: str, changes: dict[str, Any], drop: Sequence[str], add: Sequence[str]) -> None:
        """`changes` to `book` (as read: guarded by its revision), its index rows moved."""
        ...

    def delete(self, book: Book, owner: str, keys: Sequence[str]) -> None:
        """`book` (as read: guarded by its revision) and its index rows under `keys`."""
        ...

    def revise(
        self, book_id: str, owner: str, revision: float | None, changes: dict[str, Any], extras: Extras
    ) -> outbox.Launch | None:
        """`changes` guarded by the revision read, with `extras`; its tasks' sends, started."""
        ...

    def claimed(self, key: str) -> IdempotencyRecord | None:
        """An Idempotency-Key's record (`idempotency.replay` reads it), or None."""
        ...


# ---------------------------------------------------------------- DynamoDB


def _actions(changes: dict[str, Any]) -> list[Any]:
    return [
        getattr(Book, name).remove() if value is None else getattr(Book, name).set(value)
        for name, value in changes.items()
    ]


def _index_row(book: Book, key: str) -> BookAuthor:
    return BookAuthor(key, sort_key(book), book_id=book.id)


def _unchanged(owner: str, revision: float | None) -> Any:
    """Still the owner's and at the revision the request read."""
    current = Book.revision == revision if revision is not None else Book.revision.does_not_exist()
    return (Book.owner == owner) & current


class DynamoBookStore:
    """The books and book-authors tables; a transactional write is one TransactWriteItems."""

    def get(self, book_id: str) -> Book | None:
        try:
            return Book.get(book_id, consistent_read=True)
        except DoesNotExist:
            return None

    def by_author(self, key: str, limit: int, start: dict[str, Any] | None) -> Listing:
        rows = BookAuthor.query(key, scan_index_forward=False, limit=limit, last_evaluated_key=start)
        ids = [row.book_id for row in rows]
        found = {book.id: book for book in Book.batch_get(ids)} if ids else {}
        return Listing([found[i] for i in ids if i in found], rows.last_evaluated_key)

    def scan(self, limit: int, start: dict[str, Any] | None) -> Listing:
        scanned = Book.scan(limit=limit, last_evaluated_key=start)
        return Listing(list(scanned), scanned.last_evaluated_key)

    def update(
        self, book_id: str, owner: str, changes: dict[str, Any], now: datetime
    ) -> tuple[Book | None, Book | None]:
        actions = [Book.updated_at.set(now), Book.revision.add(1), *_actions(changes)]
        condition = Book.id.exists() & (Book.owner == owner)
        if "authors" in changes:
            condition &= Book.authors == changes["authors"]
        return update_or_old(Book, book_id, actions, condition)

    def create(self, book: Book, keys: Sequence[str], extras: Extras) -> outbox.Launch | None:
        def write(tx: Transaction) -> None:
            tx.put("book", book, condition=Book.id.does_not_exist())
            for key in keys:
                tx.put(f"author:{key}", _index_row(book, key))

        return self._commit(write, extras)

    def reindex(self, book: Book, owner: str, changes: dict[str, Any], drop: Sequence[str], add: Sequence[str]) -> None:
        with transaction() as tx:
            tx.update("book", Book(book.id), _actions(changes), condition=_unchanged(owner, book.revision))
            for key in drop:
                tx.delete(f"unindex:{key}", _index_row(book, key))
            for key in add:
                tx.put(f"index:{key}", _index_row(book, key))

    def delete(self, book: Book, owner: str, keys: Sequence[str]) -> None:
        with transaction() as tx:
            tx.delete("book", Book(book.id), condition=_unchanged(owner, book.revision))
            for key in keys:
                tx.delete(f"unindex:{key}", _index_row(book, key))

    def revise(
        self, book_id: str, owner: str, revision: float | None, changes: dict[str, Any], extras: Extras
    ) -> outbox.Launch | None:
        def write(tx: Transaction) -> None:
            tx.update("book", Book(book_id), _actions(changes), condition=_unchanged(owner, revision))

        return self._commit(write, extras)

    def claimed(self, key: str) -> IdempotencyRecord | None:
        return idempotency.read(key)

    @staticmethod
    def _commit(write: Callable[[Transaction], None], extras: Extras) -> outbox.Launch | None:
        """One transaction: the key's record, the book's writes, the task records; the sends
        start as its last step, so they run while it commits (tasks/outbox.py)."""
        with transaction() as tx:
            idempotency.stage(tx, extras.claim, extras.answer, extras.status_code)
            write(tx)
            messages = outbox.stage(tx, extras.tasks, extras.owner, concurrent=True)
            if extras.upload is not None:
                uploads.stage_pending(tx, extras.upload, extras.owner)
            launched = dispatch.launch(messages)
        return launched


# ---------------------------------------------------------------- memory


def _page(keys: list[Any], limit: int) -> tuple[list[Any], Any]:
    """The first `limit` keys and the last of them when more remain (as the emulator answers:
    DynamoDB itself also answers it when the last page is exactly full; the next page is empty)."""
    page = keys[:limit]
    return page, page[-1] if len(keys) > limit and page else None


class MemoryBookStore:
    """Books and index rows in dicts, under a lock: for unit tests of the book rules (no AWS).

    Items are kept as DynamoDB would store them (PynamoDB's serialized form), so a read gives
    what a GetItem gives. A transactional write checks every guard, then applies all or raises
    `TransactionCancelled` with the labels that failed; the records it carries are kept in
    `claims`, `tasks` (staged messages) and `pending` (upload ingests). As with DynamoDB, the
    sends start (`dispatch.launch`) before the write is decided, so a refused write has sent
    them too (a worker drops a staged message whose record never appears).
    """

    def __init__(self) -> None:
        self.books: dict[str, dict[str, Any]] = {}
        self.index: dict[tuple[str, str], str] = {}  # (author key, sort key) -> book id
        self.claims: dict[str, dict[str, Any]] = {}
        self.tasks: dict[str, outbox.Outgoing] = {}
        self.pending: dict[str, Envelope] = {}
        self._lock = threading.Lock()

    def _book(self, book_id: str) -> Book | None:
        item = self.books.get(book_id)
        return None if item is None else Book.from_raw_data(item)

    def _write(self, book: Book, changes: dict[str, Any]) -> Book:
        for name, value in changes.items():
            setattr(book, name, value)
        self.books[book.id] = book.serialize()
        return Book.from_raw_data(self.books[book.id])

    def _unchanged(self, book_id: str, owner: str, revision: float | None) -> bool:
        book = self._book(book_id)
        return book is not None and book.owner == owner and book.revision == revision

    @staticmethod
    def _cancel(checks: dict[str, bool]) -> None:
        failed = {label: REFUSED for label, held in checks.items() if not held}
        if failed:
            raise TransactionCancelled(failed)

    def get(self, book_id: str) -> Book | None:
        with self._lock:
            return self._book(book_id)

    def by_author(self, key: str, limit: int, start: dict[str, Any] | None) -> Listing:
        after = str(start["sort_key"]["S"]) if start else None
        with self._lock:
            rows = sorted((sk for ak, sk in self.index if ak == key and (after is None or sk < after)), reverse=True)
            page, last = _page(rows, limit)
            books = [book for sk in page if (book := self._book(self.index[(key, sk)])) is not None]
        return Listing(books, {"author_key": {"S": key}, "sort_key": {"S": last}} if last else None)

    def scan(self, limit: int, start: dict[str, Any] | None) -> Listing:
        after = str(start["id"]["S"]) if start else None
        with self._lock:
            page, last = _page(sorted(i for i in self.books if after is None or i > after), limit)
            books = [Book.from_raw_data(self.books[i]) for i in page]
        return Listing(books, {"id": {"S": last}} if last else None)

    def update(
        self, book_id: str, owner: str, changes: dict[str, Any], now: datetime
    ) -> tuple[Book | None, Book | None]:
        with self._lock:
            book = self._book(book_id)
            if book is None:
                return None, None
            if book.owner != owner or ("authors" in changes and list(book.authors) != list(changes["authors"])):
                return None, book
            revision = int(book.revision or 0) + 1
            return self._write(book, {"updated_at": now, "revision": revision, **changes}), None

    def create(self, book: Book, keys: Sequence[str], extras: Extras) -> outbox.Launch | None:
        def write() -> None:
            self._write(book, {})
            for key in keys:
                self.index[(key, sort_key(book))] = book.id

        return self._commit(lambda: book.id not in self.books, write, extras)

    def reindex(self, book: Book, owner: str, changes: dict[str, Any], drop: Sequence[str], add: Sequence[str]) -> None:
        with self._lock:
            self._cancel({"book": self._unchanged(book.id, owner, book.revision)})
            stored = self._book(book.id)
            assert stored is not None  # the guard held
            self._write(stored, changes)
            for key in drop:
                self.index.pop((key, sort_key(book)), None)
            for key in add:
                self.index[(key, sort_key(book))] = book.id

    def delete(self, book: Book, owner: str, keys: Sequence[str]) -> None:
        with self._lock:
            self._cancel({"book": self._unchanged(book.id, owner, book.revision)})
            del self.books[book.id]
            for key in keys:
                self.index.pop((key, sort_key(book)), None)

    def revise(
        self, book_id: str, owner: str, revision: float | None, changes: dict[str, Any], extras: Extras
    ) -> outbox.Launch | None:
        def write() -> None:
            stored = self._book(book_id)
            assert stored is not None  # the guard held
            self._write(stored, changes)

        return self._commit(lambda: self._unchanged(book_id, owner, revision), write, extras)

    def _commit(self, book_held: Callable[[], bool], write: Callable[[], None], extras: Extras) -> outbox.Launch | None:
        """The book's write with `extras`, as `DynamoBookStore._commit`: the sends start first
        (before the write is decided), then every guard is checked under the lock, then all applies."""
        messages = outbox.staged_messages(extras.tasks, concurrent=True)
        launched = dispatch.launch(messages)
        with self._lock:
            self._cancel({**self._claim_check(extras), "book": book_held(), **self._task_checks(messages)})
            write()
            self._keep(extras, messages)
        return launched

    def claimed(self, key: str) -> IdempotencyRecord | None:
        with self._lock:
            item = self.claims.get(key)
        return None if item is None else IdempotencyRecord.from_raw_data(item)

    def _claim_check(self, extras: Extras) -> dict[str, bool]:
        """The key is free, or its record has expired (it may be replaced, as in `idempotency.stage`)."""
        if extras.claim is None:
            return {}
        item = self.claims.get(extras.claim.key)
        return {idempotency.LABEL: item is None or not idempotency.live(IdempotencyRecord.from_raw_data(item))}

    def _task_checks(self, messages: list[outbox.Outgoing]) -> dict[str, bool]:
        return {f"task:{m.envelope.task_id}": m.envelope.task_id not in self.tasks for m in messages}

    def _keep(self, extras: Extras, messages: list[outbox.Outgoing]) -> None:
        if extras.claim is not None:
            record = idempotency.record_of(extras.claim, extras.answer, extras.status_code)
            self.claims[extras.claim.key] = record.serialize()
        self.tasks.update({m.envelope.task_id: m for m in messages})
        if extras.upload is not None:
            self.pending[extras.upload.ingest.task_id] = extras.upload.ingest


_SEAM: Seam[BookStore] = Seam(DynamoBookStore)
#: The store the service uses: the DynamoDB one unless `configure` chose another.
current = _SEAM.current


def configure(chosen: BookStore | None) -> None:
    """Use a store from now on (a test's memory store); None: back to the DynamoDB one.

    `idempotency.replay` then reads the Idempotency-Key records where this store commits them.
    """
    _SEAM.configure(chosen)
    idempotency.configure_reader(None if chosen is None else chosen.claimed)
