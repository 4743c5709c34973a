"""The book rules that need no store: what a book shows, and what is refused before any write.

The service's paths through its store are tested over the memory store in test_book_units.py
and over the emulator (tests/functional/test_api_books.py, test_book_update_path.py). What is
decided before the first AWS call is tested here: these tests pass with AWS unreachable
(`make test-unit`), so a refusal that reached for DynamoDB or S3 first would fail them.
"""

from __future__ import annotations

import base64
from typing import Any

import pytest

from chalicelib.books import service
from chalicelib.books.models import Book
from chalicelib.books.schemas import BookCreate, BookUpdate
from chalicelib.platform.config import get_settings
from chalicelib.platform.errors import PayloadTooLarge, UnsupportedMediaType, ValidationFailed

pytestmark = pytest.mark.unit

PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"


def _book(**fields: Any) -> Book:
    book = Book("b-1", owner="u-1", title="Dune", authors=["Frank Herbert"], **fields)
    book.revision = 1
    return book


def test_thumbnails_are_shown_only_once_the_current_cover_is_ready() -> None:
    thumbnails = {"100.jpg": "covers/b-1/v1/100.jpg", "200.webp": "covers/b-1/v1/200.webp"}
    pending = service.view(_book(cover_version=1, cover_status="pending", thumbnails=thumbnails))
    assert pending["cover"]["thumbnails"] == {} and pending["cover"]["sizes"] == []
    assert pending["cover_status"] == pending["cover"]["status"] == "pending"

    ready = service.view(_book(cover_version=1, cover_status="ready", thumbnails=thumbnails))
    assert ready["cover"]["sizes"] == [100, 200]
    shown = ready["cover"]["thumbnails"]
    assert {name: item["key"] for name, item in shown.items()} == thumbnails
    assert all(item["key"] in item["url"] for item in shown.values())  # a presigned GET, signed locally


def test_a_waiting_upload_is_shown_beside_the_ready_cover() -> None:
    book = _book(cover_version=1, cover_status="ready", upload_version=2, upload_status="uploading")
    assert service.view(book)["cover"]["upload"] == {"version": 2, "status": "uploading", "error": None}
    assert service.view(_book())["cover"]["upload"] is None


def test_an_update_that_changes_nothing_is_refused() -> None:
    with pytest.raises(ValidationFailed) as refused:
        service.update_book("b-1", "u-1", BookUpdate())
    assert refused.value.fields == [{"field": "body", "message": "give title, authors or description"}]


def test_title_and_authors_cannot_be_set_to_null() -> None:
    with pytest.raises(ValidationFailed) as refused:
        service.update_book("b-1", "u-1", BookUpdate.model_validate({"title": None, "authors": None}))
    assert refused.value.fields == [
        {"field": "title", "message": "must not be null"},
        {"field": "authors", "message": "must not be null"},
    ]


def test_an_inline_cover_over_the_limit_is_refused_before_it_is_stored() -> None:
    limit = get_settings().max_cover_bytes
    cover = base64.b64encode(PNG_SIGNATURE + bytes(limit)).decode()
    body = BookCreate(title="Dune", authors=["Frank Herbert"], cover=cover)
    with pytest.raises(PayloadTooLarge) as refused:
        service.create_book("u-1", body)
    assert refused.value.fields == [{"field": "cover", "message": "too large"}]


def test_an_inline_cover_that_is_no_image_is_refused_before_it_is_stored() -> None:
    body = BookCreate(title="Dune", authors=["Frank Herbert"], cover=base64.b64encode(b"GIF89a" + bytes(64)).decode())
    with pytest.raises(UnsupportedMediaType) as refused:
        service.create_book("u-1", body)
    assert refused.value.fields == [{"field": "cover", "message": "not a JPEG, PNG or WebP image"}]
