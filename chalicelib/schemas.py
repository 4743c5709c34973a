"""Request bodies and query parameters, validated with pydantic."""

from __future__ import annotations

import base64
import binascii
import json
import re
from typing import Annotated, Any, Literal, TypeVar

from pydantic import (
    AfterValidator,
    BaseModel,
    ConfigDict,
    EmailStr,
    Field,
    StringConstraints,
    ValidationError,
    field_validator,
    model_validator,
)

from chalicelib.errors import MalformedRequest, PayloadTooLarge, ValidationFailed
from chalicelib.validation import MAX_AUTHOR, multi_line, single_line

MAX_TITLE = 300
MAX_AUTHORS = 20
MAX_DESCRIPTION = 10_000
MAX_PAGE = 100
MAX_JSON_DEPTH = 32

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


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", strict=True)


class CoverUpload(_Strict):
    """A cover the client uploads to S3 itself: `cover_upload` of `POST /books`, body of
    `POST /books/{id}/cover/upload`. The size is checked against the limit in the service (413)."""

    content_type: Literal["image/jpeg", "image/png", "image/webp"]
    size: int = Field(ge=1)


class BookCreate(_Strict):
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


class BookUpdate(_Strict):
    """Body of `PUT /books/{id}`: any of the fields, at least one."""

    title: Title | None = None
    authors: list[AuthorName] | None = Field(default=None, min_length=1, max_length=MAX_AUTHORS)
    description: Description | None = None

    @field_validator("authors")
    @classmethod
    def _distinct_authors(cls, authors: list[str] | None) -> list[str] | None:
        return None if authors is None else _distinct(authors)


class SubscriberCreate(_Strict):
    """Body of `POST /authors/{name}/subscribers`."""

    email: EmailStr


class Page(_Strict):
    """Pagination query parameters."""

    limit: int = Field(default=20, ge=1, le=MAX_PAGE)
    cursor: str | None = None  # checked by chalicelib.pagination (400 naming `cursor`)


M = TypeVar("M", bound=BaseModel)


def _fields(exc: ValidationError) -> list[dict[str, Any]]:
    return [
        {"field": ".".join(str(p) for p in err["loc"]) or "body", "message": err["msg"].removeprefix("Value error, ")}
        for err in exc.errors(include_url=False, include_context=False, include_input=False)
    ]


def parse_json(raw: bytes | None, max_bytes: int) -> Any:
    """Decode a JSON request body or raise a 4xx naming the problem."""
    if raw is None or raw == b"":
        raise MalformedRequest("request body is required", [{"field": "body", "message": "missing"}])
    if len(raw) > max_bytes:
        raise PayloadTooLarge(
            f"request body is larger than {max_bytes} bytes", [{"field": "body", "message": "too large"}]
        )
    too_deep = _nesting_problem(raw)
    if too_deep:
        raise MalformedRequest(f"request body {too_deep}", [{"field": "body", "message": too_deep}])
    try:
        return json.loads(raw)
    except (UnicodeDecodeError, ValueError) as exc:
        raise MalformedRequest(
            f"request body is not valid JSON: {exc}", [{"field": "body", "message": "invalid JSON"}]
        ) from None


# A JSON string (escapes included), whose brackets do not count. Unrolled, so a 6 MB base64
# cover is one match and no backtracking.
_JSON_STRING = re.compile(rb'"[^"\\]*(?:\\.[^"\\]*)*"', re.DOTALL)
_NOT_BRACKETS = bytes(b for b in range(256) if b not in b"[]{}")
_SAME_BRACKETS = bytes.maketrans(b"{}", b"[]")


def _nesting_problem(raw: bytes, limit: int = MAX_JSON_DEPTH) -> str | None:
    """Why `raw` nests too deep to parse safely, or None.

    json.loads recurses once per level (100,000 `[` is a RecursionError, a 500), and so does
    everything that walks the result. The json module has no depth limit, so the brackets
    outside strings are counted first, at C speed: each `replace` round removes the
    innermost pairs, so a document of depth d is empty after d rounds. Whatever is left after
    `limit` rounds is nested deeper (or has unbalanced brackets, which is not JSON either).
    """
    if raw.count(b"[") + raw.count(b"{") <= limit:
        return None
    brackets = _JSON_STRING.sub(b"", raw).translate(_SAME_BRACKETS, _NOT_BRACKETS)
    for _ in range(limit):
        if not brackets:
            return None
        shorter = brackets.replace(b"[]", b"")
        if len(shorter) == len(brackets):
            break
        brackets = shorter
    if not brackets:
        return None
    if b"[]" in brackets:
        return f"nests deeper than {limit} levels"
    return "is not valid JSON: unbalanced brackets"


def validate(model: type[M], data: Any) -> M:
    """Validate `data` against `model` or raise ValidationFailed naming each field."""
    if model is not Page and not isinstance(data, dict):
        raise ValidationFailed("request body must be a JSON object", [{"field": "body", "message": "not an object"}])
    try:
        return model.model_validate(data)
    except ValidationError as exc:
        fields = _fields(exc)
        raise ValidationFailed(f"invalid {', '.join(f['field'] for f in fields)}", fields) from None


def parse_page(params: dict[str, str] | None) -> Page:
    """Validate `limit` and `cursor` query parameters."""
    params = dict(params or {})
    data: dict[str, Any] = {}
    if "cursor" in params:
        data["cursor"] = params["cursor"]
    if "limit" in params:
        try:
            data["limit"] = int(params["limit"])
        except ValueError:
            raise ValidationFailed("invalid limit", [{"field": "limit", "message": "must be an integer"}]) from None
    return validate(Page, data)


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
