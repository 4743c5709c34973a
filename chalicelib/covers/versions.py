"""Which cover version of a book a worker is working on, and the conditional writes of its state.

A book serves one cover (`cover_version`, `cover_status`, `thumbnails`, …). A direct upload
asked for while that cover is `ready` does not replace it: the new version waits beside it
(`upload_version`, `upload_status`, `upload_error`) and is promoted to the cover only once its
thumbnails exist, so the ready cover is served until then, and kept if the upload never comes
or fails. Otherwise (no cover yet, or one not ready) the new version is the cover itself.
Every write is conditioned on the version still being in its place, so a replaced version
changes nothing.
"""

from __future__ import annotations

import enum
from typing import Any

from pynamodb.exceptions import DoesNotExist, UpdateError

from chalicelib.books.models import Book
from chalicelib.covers import storage
from chalicelib.platform.dynamodb import condition_failed, utcnow

READY = "ready"
MAX_ERROR = 1000


class Role(enum.Enum):
    """Where a version sits on its book."""

    COVER = "cover"  # the version the book serves
    UPLOAD = "upload"  # a direct upload waiting beside a ready cover


def next_version(book: Book) -> int:
    """The number of a new cover version: above the served one and any upload waiting."""
    return max(int(book.cover_version or 0), int(book.upload_version or 0)) + 1


def load(book_id: str) -> Book | None:
    """The book, read consistently, or None."""
    try:
        return Book.get(book_id, consistent_read=True)
    except DoesNotExist:
        return None


def role_of(book: Book | None, version: int) -> Role | None:
    """Where `version` sits on `book`; None when it was replaced (or the book is gone)."""
    if book is None:
        return None
    if int(book.cover_version or 0) == version:
        return Role.COVER
    if book.upload_version is not None and int(book.upload_version) == version:
        return Role.UPLOAD
    return None


def status_of(book: Book, role: Role) -> str | None:
    """The status of the version in `role`."""
    return book.cover_status if role is Role.COVER else book.upload_status


def original_of(book: Book, version: int, role: Role) -> str:
    """The S3 key of the version's original (a replaced cover's key carries a random suffix)."""
    if role is Role.COVER and book.cover_key:
        return str(book.cover_key)
    return storage.original_key(book.id, version)


def _update(book_id: str, actions: list[Any], condition: Any) -> bool:
    try:
        Book(book_id).update(actions=[*actions, Book.updated_at.set(utcnow())], condition=condition)
    except UpdateError as exc:
        if condition_failed(exc):
            return False
        raise
    return True


def _in_place(version: int, role: Role) -> Any:
    if role is Role.COVER:
        return Book.id.exists() & (Book.cover_version == version)
    return Book.id.exists() & (Book.upload_version == version)


def set_status(
    book_id: str, version: int, role: Role, status: str, error: str | None = None, only_from: str | None = None
) -> bool:
    """Set the version's status (and error, or none), if it is still in `role` (and in `only_from`,
    when given). False when the condition does not hold."""
    status_attr, error_attr = (
        (Book.cover_status, Book.cover_error) if role is Role.COVER else (Book.upload_status, Book.upload_error)
    )
    actions = [status_attr.set(status), error_attr.set(error[:MAX_ERROR]) if error else error_attr.remove()]
    condition = _in_place(version, role)
    if only_from is not None:
        condition = condition & (status_attr == only_from)
    return _update(book_id, actions, condition)


def mark_ready(book_id: str, version: int, role: Role, thumbnails: dict[str, str]) -> bool:
    """The version's thumbnails exist: the book serves it. An upload waiting beside the cover
    becomes the cover in this one write. False when the version was replaced meanwhile."""
    actions: list[Any] = [Book.cover_status.set(READY), Book.thumbnails.set(thumbnails), Book.cover_error.remove()]
    if role is Role.UPLOAD:
        actions += [
            Book.cover_version.set(version),
            Book.cover_key.set(storage.original_key(book_id, version)),
            Book.upload_version.remove(),
            Book.upload_status.remove(),
            Book.upload_error.remove(),
        ]
    return _update(book_id, actions, _in_place(version, role))


def mark_failed(book_id: str, version: int, reason: str) -> bool:
    """The version failed for good (any cause): it says `failed` and why, wherever it sits,
    unless it is ready or was replaced. A ready cover beside a failed upload stays served."""
    for role in Role:
        status_attr, error_attr = (
            (Book.cover_status, Book.cover_error) if role is Role.COVER else (Book.upload_status, Book.upload_error)
        )
        actions = [status_attr.set("failed"), error_attr.set(reason[:MAX_ERROR])]
        if _update(book_id, actions, _in_place(version, role) & (status_attr != READY)):
            return True
    return False


def delete_older(book_id: str, version: int) -> None:
    """Delete the objects of every version below `version` (called once it is served)."""
    for old in range(1, version):
        storage.delete_prefix(f"covers/{book_id}/v{old}/")
