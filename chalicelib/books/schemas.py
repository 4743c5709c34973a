"""Bodies of the book routes (`POST /books`, `PUT /books/{id}`, cover uploads), and the inline cover."""

from __future__ import annotations

import base64
import binascii
from typing import Annotated, Literal

from pydantic import AfterValidator, Field, StringConstraints, field_validator, model_validator

from chalicelib.platform.errors import PayloadTooLarge, ValidationFailed
from chalicelib.platform.schemas import StrictModel
from chalicelib.platform.validation import MAX_AUTHOR, multi_line, single_line

MAX_TITLE = 300
MAX_AUTHORS = 20
MAX_DESCRIPTION = 10_000

# Control characters are checked after stripping: surrounding whitespace is forgiven, a CR,
# LF, tab, NEL or bidi override inside a single-line field is a 422 naming the field.
Title = Annotated[
    str, StringConstraints(strip_whitespace=True, min_length=1, max_length=MAX_TITLE), AfterValidator(single_line)
]
AuthorName = Annotated[
    str, StringConstraints(strip_whitespace=True, min_length=1, max_length=MAX_AUTHOR), AfterValidator(single_line)
]
Description = Annotated[str, StringConstraints(max_length=MAX_DESCRIPTION), AfterValidator(multi_line)]


def _distinct(authors: list[str]) -> list[str]:
    if len({" ".join(a.casefold().split()) for a in authors}) != len(authors):
        raise ValueError("authors must be distinct")
    return authors


class CoverUpload(StrictModel):
    """A cover the client uploads to S3 itself: `cover_upload` of `POST /books`, body of
    `POST /books/{id}/cover/upload`. The size is checked against the limit in the service (413)."""

    content_type: Literal["image/jpeg", "image/png", "image/webp"]
    size: int = Field(ge=1)


class BookCreate(StrictModel):
    """Body of `POST /books`."""

    title: Title
    authors: list[AuthorName] = Field(min_length=1, max_length=MAX_AUTHORS)
    description: Description | None = None
    cover: str | None = Field(default=None, description="base64-encoded JPEG, PNG or WebP")
    cover_upload: CoverUpload | None = None

    @model_validator(mode="after")
    def _one_cover(self) -> BookCreate:
        if self.cover is not None and self.cover_upload is not None:
            raise ValueError("give either cover (inline) or cover_upload (direct upload), not both")
        return self

    @field_validator("authors")
    @classmethod
    def _distinct_authors(cls, authors: list[str]) -> list[str]:
        return _distinct(authors)


class BookUpdate(StrictModel):
    """Body of `PUT /books/{id}`: any of the fields, at least one."""

    title: Title | None = None
    authors: list[AuthorName] | None = Field(default=None, min_length=1, max_length=MAX_AUTHORS)
    description: Description | None = None

    @field_validator("authors")
    @classmethod
    def _distinct_authors(cls, authors: list[str] | None) -> list[str] | None:
        return None if authors is None else _distinct(authors)


def decode_cover(value: str, max_bytes: int) -> bytes:
    """Decode a base64 cover, bounded by `max_bytes` decoded."""
    if len(value) > (max_bytes * 4) // 3 + 8:
        raise PayloadTooLarge(f"cover is larger than {max_bytes} bytes", [{"field": "cover", "message": "too large"}])
    try:
        data = base64.b64decode(value, validate=True)
    except (binascii.Error, ValueError):
        raise ValidationFailed("invalid cover", [{"field": "cover", "message": "must be base64"}]) from None
    if len(data) > max_bytes:
        raise PayloadTooLarge(f"cover is larger than {max_bytes} bytes", [{"field": "cover", "message": "too large"}])
    return data
