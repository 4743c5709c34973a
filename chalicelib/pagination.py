"""Opaque pagination cursors over DynamoDB's LastEvaluatedKey."""

from __future__ import annotations

import base64
import json
from typing import Any

from chalicelib.errors import ValidationFailed


def encode_cursor(last_key: dict[str, Any] | None) -> str | None:
    """The cursor for the next page, or None on the last page."""
    if not last_key:
        return None
    return base64.urlsafe_b64encode(json.dumps(last_key, separators=(",", ":")).encode()).decode().rstrip("=")


def decode_cursor(cursor: str | None) -> dict[str, Any] | None:
    """The LastEvaluatedKey inside a cursor; 422 when it was not made by us."""
    if not cursor:
        return None
    try:
        raw = base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4))
        key = json.loads(raw)
    except (ValueError, UnicodeDecodeError):
        key = None
    valid = (
        isinstance(key, dict)
        and 0 < len(key) <= 4
        and all(
            isinstance(k, str) and isinstance(v, dict) and len(v) == 1 and set(v) <= {"S", "N"} for k, v in key.items()
        )
    )
    if not valid:
        raise ValidationFailed("invalid cursor", [{"field": "cursor", "message": "not a cursor from this API"}])
    return key
