"""Books: create, read, list by author, update, delete, replace cover."""

from __future__ import annotations

import uuid
from typing import Any

from pynamodb.exceptions import DoesNotExist

from chalicelib import jobs, storage, uploads, validation
from chalicelib.authors import author_key
from chalicelib.config import get_settings
from chalicelib.errors import Forbidden, NotFound, PayloadTooLarge, UnsupportedMediaType, ValidationFailed
from chalicelib.models import Book, BookAuthor, utcnow
from chalicelib.pagination import decode_cursor, encode_cursor, listing_scope
from chalicelib.schemas import BookCreate, BookUpdate, CoverUpload, Page, decode_cover
from chalicelib.tasks.dispatch import dispatch
from chalicelib.tasks.registry import Signature


def view(book: Book) -> dict[str, Any]:
    """The JSON form of a book, with presigned thumbnail URLs once ready."""
    thumbnails = (
        {
            name: {"key": key, "url": storage.presigned_url(key)}
            for name, key in (book.thumbnails or {}).as_dict().items()
        }
        if book.thumbnails
        else {}
    )
    return {
        "id": book.id,
        "title": book.title,
        "authors": list(book.authors),
        "description": book.description,
        "owner": book.owner,
        "cover_status": book.cover_status,
        "cover": {
            "status": book.cover_status,
            "version": int(book.cover_version or 0),
            "error": book.cover_error,
            "thumbnails": thumbnails,
        },
        "created_at": book.created_at.isoformat(),
        "updated_at": book.updated_at.isoformat(),
    }


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


def _store_cover(book: Book, data: bytes, content_type: str) -> None:
    book.cover_version = int(book.cover_version or 0) + 1
    book.cover_key = storage.original_key(book.id, book.cover_version)
    storage.put(book.cover_key, data, content_type)
    book.cover_status = "pending"
    book.cover_error = None


def _index_authors(book: Book, authors: list[str]) -> None:
    with BookAuthor.batch_write() as batch:
        for name in authors:
            batch.save(BookAuthor(author_key(name), f"{book.created_at.isoformat()}#{book.id}", book_id=book.id))


def _unindex_authors(book: Book, authors: list[str]) -> None:
    with BookAuthor.batch_write() as batch:
        for name in authors:
            batch.delete(BookAuthor(author_key(name), f"{book.created_at.isoformat()}#{book.id}"))


def create_book(owner: str, data: BookCreate) -> dict[str, Any]:
    """Save a book, store its cover and dispatch the resize and the notifications."""
    cover = decode_cover(data.cover, get_settings().max_cover_bytes) if data.cover is not None else None
    content_type = _checked_cover(cover, None, "cover") if cover is not None else None
    book = Book(str(uuid.uuid4()), owner=owner, title=data.title, authors=data.authors, description=data.description)
    signatures: list[Signature] = []
    if cover is not None and content_type is not None:
        _store_cover(book, cover, content_type)
        signatures.append(jobs.resize_cover.s(book.id, book.cover_version))
    upload = uploads.begin(book, data.cover_upload, "cover_upload.size") if data.cover_upload else None
    book.save()
    _index_authors(book, data.authors)
    signatures.append(jobs.notify_subscribers.s(book.id))
    if upload is None:
        task_ids = dispatch(signatures, owner)  # before the reload: eager mode runs them here
        return {"book": view(_reload(book)), "tasks": task_ids}
    uploads.record_pending(upload, owner)
    task_ids = dispatch([*signatures, *upload.signatures], owner)[: len(signatures)]
    return {"book": view(_reload(book)), "upload": upload.form, "tasks": [upload.ingest.task_id, *task_ids]}


def _reload(book: Book) -> Book:
    return get_book(book.id) if get_settings().tasks_eager else book


def get_book(book_id: str) -> Book:
    """The book with this id, or 404."""
    try:
        return Book.get(book_id, consistent_read=True)
    except DoesNotExist:
        raise NotFound(f"book {book_id} not found") from None


def _owned(book_id: str, owner: str) -> Book:
    book = get_book(book_id)
    if book.owner != owner:
        raise Forbidden(f"book {book_id} belongs to another user")
    return book


def list_books(author: str | None, page: Page) -> dict[str, Any]:
    """A page of books, by one author (newest first) or all."""
    key = author_key(validation.author(author, "author")) if author is not None else None
    scope = listing_scope("books", author=key)
    start = decode_cursor(page.cursor, scope)
    if key is not None:
        rows = BookAuthor.query(key, scan_index_forward=False, limit=page.limit, last_evaluated_key=start)
        ids = [row.book_id for row in rows]
        found = {book.id: book for book in Book.batch_get(ids)} if ids else {}
        books = [found[i] for i in ids if i in found]
    else:
        rows = Book.scan(limit=page.limit, last_evaluated_key=start)
        books = list(rows)
    return {"items": [view(b) for b in books], "next_cursor": encode_cursor(rows.last_evaluated_key, scope)}


def update_book(book_id: str, owner: str, data: BookUpdate) -> dict[str, Any]:
    """Change title, authors or description."""
    book = _owned(book_id, owner)
    changes = data.model_dump(exclude_unset=True)
    if not changes:
        raise ValidationFailed(
            "nothing to update", [{"field": "body", "message": "give title, authors or description"}]
        )
    if "authors" in changes and changes["authors"] != list(book.authors):
        _unindex_authors(book, list(book.authors))
        _index_authors(book, changes["authors"])
    for name, value in changes.items():
        setattr(book, name, value)
    book.updated_at = utcnow()
    book.save()
    return view(book)


def delete_book(book_id: str, owner: str) -> None:
    """Delete a book, its author index rows and its S3 objects."""
    book = _owned(book_id, owner)
    _unindex_authors(book, list(book.authors))
    book.delete()
    storage.delete_prefix(f"covers/{book.id}/")


def replace_cover(book_id: str, owner: str, data: bytes, content_type: str | None) -> dict[str, Any]:
    """Store a new cover version and dispatch its resize."""
    book = _owned(book_id, owner)
    media_type = _checked_cover(data, content_type, "body")
    _store_cover(book, data, media_type)
    book.updated_at = utcnow()
    book.save()
    task_id = dispatch([jobs.resize_cover.s(book.id, book.cover_version)], owner)[0]
    return {"book": view(_reload(book)), "tasks": [task_id]}


def start_cover_upload(book_id: str, owner: str, spec: CoverUpload) -> dict[str, Any]:
    """A new cover version that the client uploads to S3 itself (presigned POST)."""
    book = _owned(book_id, owner)
    upload = uploads.begin(book, spec, "size")
    book.updated_at = utcnow()
    book.save()
    uploads.record_pending(upload, owner)
    dispatch(upload.signatures, owner)
    return {"book": view(book), "upload": upload.form, "tasks": [upload.ingest.task_id]}
