"""Turning a stored cover into thumbnails and recording them on the book."""

from __future__ import annotations

from typing import Any

from aws_lambda_powertools.metrics import MetricUnit
from pynamodb.exceptions import DoesNotExist, UpdateError

from chalicelib.books.models import Book
from chalicelib.covers import storage
from chalicelib.platform.config import get_settings
from chalicelib.platform.dynamodb import condition_failed, utcnow
from chalicelib.platform.observability import emit, logger
from chalicelib.tasks.errors import PermanentTaskError


def _current(book_id: str, version: int) -> Book | None:
    try:
        book = Book.get(book_id, consistent_read=True)
    except DoesNotExist:
        return None
    return book if int(book.cover_version or 0) == version else None


def _set_on_version(book_id: str, version: int, actions: list[Any]) -> bool:
    try:
        Book(book_id).update(
            actions=[*actions, Book.updated_at.set(utcnow())],
            condition=Book.id.exists() & (Book.cover_version == version),
        )
    except UpdateError as exc:
        if condition_failed(exc):
            return False
        raise
    return True


def resize(book_id: str, version: int) -> dict[str, Any]:
    """Make the thumbnails of cover `version`, unless the book or the version is gone.

    A version replaced while it was being resized does not fail, whatever went wrong: its
    result is of no use, so the task ends skipped (no FAILURE, no dead letter), as it does
    when the replacement came first.
    """
    book = _current(book_id, version)
    if book is None:
        logger.info("cover superseded or book deleted; nothing to do")
        return {"skipped": "book deleted or cover replaced"}
    try:
        return _resize(book, version)
    except Exception:
        if _current(book_id, version) is None:
            logger.info("cover superseded while it failed; its failure does not matter", exc_info=True)
            return {"skipped": "book deleted or cover replaced while resizing"}
        raise


def _resize(book: Book, version: int) -> dict[str, Any]:
    from chalicelib.covers.images import UnreadableImage, make_thumbnails  # Pillow stays out of the API

    book_id, settings = book.id, get_settings()
    # The book names its original (a replaced cover's key carries a random suffix). Inline covers
    # are capped by MAX_COVER_BYTES, direct uploads by MAX_UPLOAD_BYTES (the POST policy).
    limit = max(settings.max_cover_bytes, settings.max_upload_bytes)
    original = storage.get(book.cover_key or storage.original_key(book_id, version), limit)
    try:
        thumbs = make_thumbnails(original, size=settings.thumbnail_size)
    except UnreadableImage as exc:
        raise PermanentTaskError(str(exc)) from None  # the task's on_failure marks the cover failed
    keys: dict[str, str] = {}
    for thumb in thumbs:
        key = storage.thumbnail_key(book_id, version, thumb.name)
        storage.put(key, thumb.data, thumb.content_type)
        keys[thumb.name] = key
        emit("ThumbnailBytes", len(thumb.data), MetricUnit.Bytes, format=thumb.content_type)
    # Older versions are unreferenced since this one was committed (a replacement removes the
    # book's thumbnails), so they go first: once the book says ready, only its version is left.
    _delete_older_versions(book_id, version)
    if not _set_on_version(
        book_id, version, [Book.cover_status.set("ready"), Book.thumbnails.set(keys), Book.cover_error.remove()]
    ):
        storage.delete_prefix(f"covers/{book_id}/v{version}/")
        return {"skipped": "book deleted or cover replaced while resizing"}
    return {"thumbnails": keys}


def mark_failed(book_id: str, version: int, reason: str) -> bool:
    """Cover `version` failed for good (any cause): the book says `failed` and why, unless the
    version was replaced or is ready. False when nothing changed."""
    try:
        Book(book_id).update(
            actions=[
                Book.cover_status.set("failed"),
                Book.cover_error.set(reason[:1000]),
                Book.updated_at.set(utcnow()),
            ],
            condition=Book.id.exists() & (Book.cover_version == version) & (Book.cover_status != "ready"),
        )
    except UpdateError as exc:
        if condition_failed(exc):
            return False
        raise
    return True


def _delete_older_versions(book_id: str, version: int) -> None:
    for old in range(1, version):
        storage.delete_prefix(f"covers/{book_id}/v{old}/")
