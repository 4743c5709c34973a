"""Books: create, read, list by author, update, delete, replace cover.

Every write of a book is one atomic write of the store (`store.py`) with its author index
rows, its PENDING task records (the outbox) and its Idempotency-Key record, conditioned on
the owner and the revision it read; SQS sends go out while it commits (`tasks/outbox.py`).
"""

from __future__ import annotations

import hashlib
import uuid
from datetime import datetime
from typing import Any

from botocore.exceptions import BotoCoreError, ClientError

from chalicelib.books import answers, store
from chalicelib.books.models import Book
from chalicelib.books.schemas import BookCreate, BookUpdate, CoverUpload, decode_cover
from chalicelib.covers import storage, versions
from chalicelib.covers.upload import service as uploads
from chalicelib.platform import idempotency, validation
from chalicelib.platform.authors import author_key
from chalicelib.platform.config import get_settings
from chalicelib.platform.dynamodb import utcnow
from chalicelib.platform.errors import (
    Conflict,
    DomainError,
    Forbidden,
    NotFound,
    PayloadTooLarge,
    UnsupportedMediaType,
    ValidationFailed,
)
from chalicelib.platform.observability import logger
from chalicelib.platform.pagination import decode_cursor, encode_cursor, listing_scope
from chalicelib.platform.schemas import Page
from chalicelib.platform.transactions import TransactionCancelled
from chalicelib.tasks.dispatch import deliver_launched
from chalicelib.tasks.registry import Signature, get_task

# Named, not imported: `chalicelib.app_tasks` declares these tasks and sits above the domains
# (as `fanout.PAGE_TASK` does; Celery's `signature(name)`). `app` imports `jobs`.
RESIZE_TASK, NOTIFY_TASK = "covers.resize", "books.notify_subscribers"


def view(book: Book) -> answers.Book:
    """The JSON form of a book; thumbnails (presigned URLs) only once the current cover is ready.

    `cover.sizes` lists the square sizes that exist: a small cover is never upscaled, so
    it may have fewer (or one smaller) size than a large one. `cover.upload` is a direct
    upload waiting beside a ready cover (its version, status and error), else null.
    """
    names = dict(book.thumbnails.as_dict()) if book.thumbnails and book.cover_status == "ready" else {}
    thumbnails: dict[str, answers.Thumbnail] = {
        name: {"key": key, "url": storage.presigned_url(key)} for name, key in names.items()
    }
    return {
        "id": book.id,
        "title": book.title,
        "authors": [str(a) for a in book.authors],
        "description": book.description,
        "owner": book.owner,
        "cover_status": book.cover_status,
        "cover": {
            "status": book.cover_status,
            "version": int(book.cover_version or 0),
            "error": book.cover_error,
            "sizes": sorted({int(name.split(".", 1)[0]) for name in names if name.split(".", 1)[0].isdigit()}),
            "thumbnails": thumbnails,
            "upload": _upload_view(book),
        },
        "created_at": book.created_at.isoformat(),
        "updated_at": book.updated_at.isoformat(),
    }


def _upload_view(book: Book) -> answers.CoverUpload | None:
    if book.upload_version is None:
        return None
    return {"version": int(book.upload_version), "status": book.upload_status, "error": book.upload_error}


def _checked_cover(data: bytes, content_type: str | None, field: str) -> str:
    settings = get_settings()
    if len(data) > settings.max_cover_bytes:
        raise PayloadTooLarge(
            f"cover is larger than {settings.max_cover_bytes} bytes", [{"field": field, "message": "too large"}]
        )
    sniffed = storage.sniff_image_type(data)
    if sniffed is None:
        raise UnsupportedMediaType(
            "cover must be a JPEG, PNG or WebP image", [{"field": field, "message": "not a JPEG, PNG or WebP image"}]
        )
    if content_type is not None and content_type != sniffed:
        raise UnsupportedMediaType(
            f"Content-Type {content_type} does not match the image ({sniffed})",
            [{"field": "Content-Type", "message": f"body is {sniffed}"}],
        )
    return sniffed


def _upload_cover(book: Book, data: bytes, content_type: str, unique: bool) -> str:
    """Store the original of the next cover version in S3 (before the transaction); returns its key.

    `unique` adds a random suffix, so two concurrent replacements that both pick the same
    next version number cannot overwrite each other's original: only the transaction's
    winner is referenced, and the loser deletes its own object.
    """
    version = int(book.cover_version or 0) + 1
    key = storage.original_key(book.id, version) + (f"-{uuid.uuid4().hex[:12]}" if unique else "")
    storage.put(key, data, content_type)
    return key


def _discard(key: str | None) -> None:
    """Delete an uploaded original whose transaction did not commit (best effort: it is unreferenced)."""
    if key is None:
        return
    try:
        storage.delete_prefix(key)
    except (ClientError, BotoCoreError):
        logger.warning("could not delete an unreferenced cover original", extra={"key": key})


def _lost_race(book_id: str) -> DomainError:
    get_book(book_id)  # 404 when it was deleted meanwhile
    return Conflict(
        f"book {book_id} was changed by another request; read it again and retry",
        [{"field": "book", "message": "changed concurrently"}],
    )


def create_book(owner: str, data: BookCreate, client_key: str | None = None) -> answers.BookAccepted:
    """Save a book, its author index rows and its tasks in one transaction, then send the tasks."""
    claim: idempotency.Claim[answers.BookAccepted] | None = idempotency.claim_for(
        client_key, owner, "POST /books", data.model_dump_json().encode()
    )
    # A retry is found by the transaction's condition on the key (no read first), except when
    # the request stores an inline cover in S3 before the transaction: that upload is worth a read.
    if data.cover is not None and (stored := idempotency.replay(claim)) is not None:
        return stored
    cover = decode_cover(data.cover, get_settings().max_cover_bytes) if data.cover is not None else None
    content_type = _checked_cover(cover, None, "cover") if cover is not None else None
    book = Book(str(uuid.uuid4()), owner=owner, title=data.title, authors=data.authors, description=data.description)
    book.revision = 1
    signatures: list[Signature] = []
    if cover is not None and content_type is not None:
        book.cover_key = _upload_cover(book, cover, content_type, unique=False)
        book.cover_version, book.cover_status = 1, "pending"
        signatures.append(get_task(RESIZE_TASK).s(book.id, book.cover_version))
    upload = uploads.begin(book, data.cover_upload, "cover_upload.size") if data.cover_upload else None
    signatures.append(get_task(NOTIFY_TASK).s(book.id))
    task_ids = [sig.task_id for sig in signatures]
    staged = [*signatures, *(upload.signatures if upload else [])]
    response: answers.BookAccepted = {"book": view(book), "tasks": task_ids}
    if upload is not None:
        response = {"book": view(book), "upload": upload.form, "tasks": [upload.ingest.task_id, *task_ids]}
    extras = store.Extras(owner, claim, response, tasks=staged, upload=upload)
    try:
        launched = store.current().create(book, [author_key(name) for name in data.authors], extras)
    except TransactionCancelled as exc:
        _discard(book.cover_key if cover is not None else None)
        if idempotency.LABEL in exc.failed:
            return idempotency.after_conflict(claim)
        raise Conflict("the book could not be saved (an id was taken); retry", []) from None
    except Exception:
        _discard(book.cover_key if cover is not None else None)
        raise
    if deliver_launched(staged, launched, owner):  # the tasks ran already: show their effect
        return {**response, "book": view(get_book(book.id))}
    return response


def get_book(book_id: str) -> Book:
    """The book with this id, or 404."""
    book = store.current().get(book_id)
    if book is None:
        raise NotFound(f"book {book_id} not found")
    return book


def _owned(book_id: str, owner: str) -> Book:
    book = get_book(book_id)
    if book.owner != owner:
        raise Forbidden(f"book {book_id} belongs to another user")
    return book


def list_books(author: str | None, page: Page) -> answers.BookPage:
    """A page of books, by one author (newest first) or all."""
    key = author_key(validation.author(author, "author")) if author is not None else None
    scope = listing_scope("books", author=key)
    start = decode_cursor(page.cursor, scope)
    books = store.current()
    found = books.by_author(key, page.limit, start) if key is not None else books.scan(page.limit, start)
    return {"items": [view(b) for b in found.books], "next_cursor": encode_cursor(found.last_key, scope)}


def update_book(book_id: str, owner: str, data: BookUpdate) -> answers.Book:
    """Change title, authors or description in ONE conditional write when the author index
    stays as it is; else the book and its index rows in one transaction.

    No read first: an UpdateItem conditioned on the owner (and on the authors as sent, so
    their index rows stay right) writes the change and answers the book as written. When
    it is refused, DynamoDB answers the book as it was (ALL_OLD): 404 or 403 from that, or,
    with new authors, the transaction that moves the index rows, conditioned on that revision.
    """
    changes = data.model_dump(exclude_unset=True)
    if not changes:
        raise ValidationFailed(
            "nothing to update", [{"field": "body", "message": "give title, authors or description"}]
        )
    required = [name for name in ("title", "authors") if name in changes and changes[name] is None]
    if required:
        raise ValidationFailed(
            f"invalid {', '.join(required)}", [{"field": name, "message": "must not be null"} for name in required]
        )
    now = utcnow()
    written, old = store.current().update(book_id, owner, changes, now)
    if written is not None:
        return view(written)
    book = _stored(book_id, old)
    if book.owner != owner:
        raise Forbidden(f"book {book_id} belongs to another user")
    return _reindex(book, owner, changes, now)


def _stored(book_id: str, refused: Book | None) -> Book:
    """The book a refused write met (ALL_OLD); read it only when the answer carried none
    (no such book: 404, or an emulator that does not return it)."""
    return refused if refused is not None else get_book(book_id)


def _reindex(book: Book, owner: str, changes: dict[str, Any], now: datetime) -> answers.Book:
    """The update with new authors: the book and its index rows in one transaction,
    conditioned on the revision `book` shows."""
    revision = int(book.revision or 0) + 1
    old = {author_key(str(a)) for a in book.authors}
    new = {author_key(str(a)) for a in changes.get("authors") or book.authors}
    written = {"updated_at": now, "revision": revision, **changes}
    try:
        store.current().reindex(book, owner, written, sorted(old - new), sorted(new - old))
    except TransactionCancelled as exc:
        if "book" in exc.failed:
            raise _lost_race(book.id) from None
        raise
    for name, value in changes.items():
        setattr(book, name, value)
    book.updated_at, book.revision = now, revision
    return view(book)


def delete_book(book_id: str, owner: str) -> None:
    """Delete a book and its author index rows in one transaction, then its S3 objects."""
    book = _owned(book_id, owner)
    try:
        store.current().delete(book, owner, sorted({author_key(str(a)) for a in book.authors}))
    except TransactionCancelled as exc:
        if "book" in exc.failed:
            raise _lost_race(book_id) from None
        raise
    try:
        storage.delete_prefix(f"covers/{book.id}/")
    except (ClientError, BotoCoreError):
        # The book is gone; its objects are unreachable (no URL is ever presigned for them).
        logger.warning("could not delete the covers of a deleted book", extra={"book_id": book.id})


def replace_cover(
    book_id: str, owner: str, data: bytes, content_type: str | None, client_key: str | None = None
) -> answers.BookAccepted:
    """Store a new cover version; the book and its resize task in one transaction; answer its pending state."""
    request = f"{book_id}\n{content_type}\n".encode() + hashlib.sha256(data).digest()
    claim: idempotency.Claim[answers.BookAccepted] | None = idempotency.claim_for(
        client_key, owner, "PUT /books/{id}/cover", request
    )
    if (stored := idempotency.replay(claim)) is not None:
        return stored
    book = _owned(book_id, owner)
    media_type = _checked_cover(data, content_type, "body")
    read_revision = book.revision
    key = _upload_cover(book, data, media_type, unique=True)
    now = utcnow()
    book.cover_version, book.cover_key, book.cover_status = versions.next_version(book), key, "pending"
    book.cover_error, book.thumbnails, book.updated_at = None, None, now
    book.upload_version = book.upload_status = book.upload_error = None  # a waiting upload is replaced too
    book.revision = int(book.revision or 0) + 1
    signatures = [get_task(RESIZE_TASK).s(book.id, book.cover_version)]
    response: answers.BookAccepted = {"book": view(book), "tasks": [signatures[0].task_id]}
    changes = {
        "cover_version": book.cover_version,
        "cover_key": key,
        "cover_status": "pending",
        "cover_error": None,
        "thumbnails": None,  # the old version's thumbnails are deleted once the new one is ready
        "upload_version": None,
        "upload_status": None,
        "upload_error": None,
        "updated_at": now,
        "revision": book.revision,
    }
    extras = store.Extras(owner, claim, response, tasks=signatures)
    try:
        launched = store.current().revise(book_id, owner, read_revision, changes, extras)
    except TransactionCancelled as exc:
        _discard(key)
        if idempotency.LABEL in exc.failed:
            return idempotency.after_conflict(claim)
        raise _lost_race(book_id) from None
    except Exception:
        _discard(key)
        raise
    if deliver_launched(signatures, launched, owner):  # the tasks ran already: show their effect
        return {"book": view(get_book(book.id)), "tasks": response["tasks"]}
    return response


def start_cover_upload(book_id: str, owner: str, spec: CoverUpload) -> answers.BookAccepted:
    """A new cover version that the client uploads to S3 itself (presigned POST).

    The book's new version and the upload's expiry task are one transaction, like a replacement.
    """
    book = _owned(book_id, owner)
    read_revision = book.revision
    upload = uploads.begin(book, spec, "size")
    now = utcnow()
    book.updated_at, book.revision = now, int(book.revision or 0) + 1
    changes = {**upload.changes, "updated_at": now, "revision": book.revision}
    extras = store.Extras(owner, tasks=upload.signatures, upload=upload)
    try:
        launched = store.current().revise(book_id, owner, read_revision, changes, extras)
    except TransactionCancelled:
        raise _lost_race(book_id) from None
    deliver_launched(upload.signatures, launched, owner)
    return {"book": view(book), "upload": upload.form, "tasks": [upload.ingest.task_id]}
