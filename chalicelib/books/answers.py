"""The JSON answers of the book service, as types.

`chalicelib/api/responses.py` describes the same shapes for the published contract (a domain
may not import the API); tests/unit/test_answer_shapes.py keeps the two to the same keys.
"""

from __future__ import annotations

from typing import NotRequired, TypedDict

from chalicelib.covers.storage import UploadForm


class Thumbnail(TypedDict):
    key: str
    url: str


class CoverUpload(TypedDict):
    """A direct upload waiting beside a ready cover."""

    version: int
    status: str | None
    error: str | None


class Cover(TypedDict):
    status: str
    version: int
    error: str | None
    sizes: list[int]
    thumbnails: dict[str, Thumbnail]
    upload: CoverUpload | None


class Book(TypedDict):
    id: str
    title: str
    authors: list[str]
    description: str | None
    owner: str
    cover_status: str
    cover: Cover
    created_at: str
    updated_at: str


class BookPage(TypedDict):
    items: list[Book]
    next_cursor: str | None


class BookAccepted(TypedDict):
    """A book (or its cover) saved, with the tasks it started; `upload` for a direct upload."""

    book: Book
    tasks: list[str]
    upload: NotRequired[UploadForm]
