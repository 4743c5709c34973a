"""Validating requests with pydantic: the strict base model, JSON bodies, paging parameters.

The domains' own bodies are beside them (`book_schemas.py`, `subscriber_schemas.py`); this
module is shared by every layer above the platform and knows none of them.
"""

from __future__ import annotations

import json
import re
from typing import Any, TypeVar

from pydantic import BaseModel, ConfigDict, Field, ValidationError

from chalicelib.platform.errors import MAX_ERROR_FIELDS, MalformedRequest, PayloadTooLarge, ValidationFailed

MAX_PAGE = 100
MAX_JSON_DEPTH = 32


class StrictModel(BaseModel):
    """Unknown fields and type coercion are refused: a typo is a 422, not silently ignored."""

    # defer_build: a model's validator is built at its first use, so an init pays only for the
    # bodies its requests validate, not for every route's (bench/README.md § 5, cold start).
    model_config = ConfigDict(extra="forbid", strict=True, defer_build=True)


class Page(StrictModel):
    """Pagination query parameters."""

    limit: int = Field(default=20, ge=1, le=MAX_PAGE)
    cursor: str | None = None  # checked by chalicelib.platform.pagination (400 naming `cursor`)


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
        named = ", ".join(f["field"] for f in fields[:MAX_ERROR_FIELDS])  # the body lists no more (errors.py)
        raise ValidationFailed(f"invalid {named}", fields) from None


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
