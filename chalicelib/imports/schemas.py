"""Body of `POST /imports`; each book is checked with `BookCreate`, the model of `POST /books`."""

from __future__ import annotations

from typing import Any

from pydantic import Field

from chalicelib.books.schemas import BookCreate
from chalicelib.platform.errors import DomainError
from chalicelib.platform.schemas import StrictModel, validate

MAX_IMPORT_BOOKS = 500
MAX_ITEM_ERRORS = 10
MAX_ERROR_TEXT = 300


class ImportCreate(StrictModel):
    """`{"books": [...]}`: the items are checked one by one (`check_item`), so one bad book
    is reported with its own errors and does not refuse the others."""

    books: list[Any] = Field(min_length=1, max_length=MAX_IMPORT_BOOKS)


def _clipped(fields: list[dict[str, Any]]) -> list[dict[str, str]]:
    return [
        {"field": str(f.get("field", ""))[:MAX_ERROR_TEXT], "message": str(f.get("message", ""))[:MAX_ERROR_TEXT]}
        for f in fields[:MAX_ITEM_ERRORS]
    ]


def check_item(item: Any) -> tuple[BookCreate | None, list[dict[str, str]]]:
    """The book, or the item's errors (bounded). An inline `cover` is refused: an import of up to
    500 books in one request cannot carry their images; `cover_upload` gives each a presigned POST."""
    try:
        book = validate(BookCreate, item)
    except DomainError as exc:
        return None, _clipped(exc.fields or [{"field": "book", "message": exc.message}])
    if book.cover is not None:
        return None, [{"field": "cover", "message": "an import takes no inline cover; use cover_upload"}]
    return book, []
