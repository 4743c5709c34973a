"""Turning a stored cover into thumbnails and recording them on the book."""

from __future__ import annotations

from typing import Any

from aws_lambda_powertools.metrics import MetricUnit

from chalicelib.books.models import Book
from chalicelib.covers import storage, versions
from chalicelib.covers.versions import Role
from chalicelib.platform.config import get_settings
from chalicelib.platform.observability import emit, logger
from chalicelib.tasks.errors import PermanentTaskError

SUPERSEDED = {"skipped": "book deleted or cover replaced"}


def resize(book_id: str, version: int) -> dict[str, Any]:
    """Make the thumbnails of cover `version`, unless the book or the version is gone.

    A version replaced while it was being resized does not fail, whatever went wrong: its
    result is of no use, so the task ends skipped (no FAILURE, no dead letter), as it does
    when the replacement came first.
    """
    book = versions.load(book_id)
    role = versions.role_of(book, version)
    if book is None or role is None:
        logger.info("cover superseded or book deleted; nothing to do")
        return SUPERSEDED
    try:
        return _resize(book, version, role)
    except Exception:
        if versions.role_of(versions.load(book_id), version) is None:
            logger.info("cover superseded while it failed; its failure does not matter", exc_info=True)
            return {"skipped": "book deleted or cover replaced while resizing"}
        raise


def _resize(book: Book, version: int, role: Role) -> dict[str, Any]:
    from chalicelib.covers.images import UnreadableImage, make_thumbnails  # Pillow stays out of the API

    book_id, settings = book.id, get_settings()
    # Inline covers are capped by MAX_COVER_BYTES, direct uploads by MAX_UPLOAD_BYTES (the POST policy).
    limit = max(settings.max_cover_bytes, settings.max_upload_bytes)
    original = storage.get(versions.original_of(book, version, role), limit)
    try:
        thumbs = make_thumbnails(original, size=settings.thumbnail_size)
    except UnreadableImage as exc:
        raise PermanentTaskError(str(exc)) from None  # the task's on_failure marks the version failed
    keys: dict[str, str] = {}
    for thumb in thumbs:
        key = storage.thumbnail_key(book_id, version, thumb.name)
        storage.put(key, thumb.data, thumb.content_type)
        keys[thumb.name] = key
        emit("ThumbnailBytes", len(thumb.data), MetricUnit.Bytes, format=thumb.content_type)
    if not versions.mark_ready(book_id, version, role, keys):
        storage.delete_prefix(f"covers/{book_id}/v{version}/")
        return {"skipped": "book deleted or cover replaced while resizing"}
    # Only now are older versions unreferenced (an upload waiting beside a ready cover left that
    # cover served until this write); a retry after a failed delete finds the version ready.
    versions.delete_older(book_id, version)
    return {"thumbnails": keys}


def mark_failed(book_id: str, version: int, reason: str) -> bool:
    """Cover `version` failed for good (any cause): it says `failed` and why, unless it was
    replaced or is ready (a ready cover beside a failed upload stays served)."""
    return versions.mark_failed(book_id, version, reason)
