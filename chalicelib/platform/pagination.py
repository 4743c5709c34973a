"""Opaque pagination cursors, signed and bound to the listing that made them.

A cursor is `<base64url of DynamoDB's LastEvaluatedKey>.<HMAC>`; the HMAC covers the key and
the listing's scope (table or index plus its filters, e.g. the author key, the status, the
caller), made with the stage's signing secret (chalicelib.platform.signing). So a client can keep a
cursor and hand it back, but a forged, tampered or truncated cursor, or one from another
listing (another author, another status filter, another user's subscriptions), is a 400
naming `cursor`, never a DynamoDB error (a 500) or a silently wrong page.
"""

from __future__ import annotations

import base64
import binascii
import json
import re
from typing import Any

from chalicelib.platform.errors import MalformedRequest
from chalicelib.platform.signing import sign, verify

PURPOSE = "pagination-cursor"
MAX_CURSOR_CHARS = 2048
_SHAPE = re.compile(r"[A-Za-z0-9_-]+\.[A-Za-z0-9_-]+")


def listing_scope(listing: str, **filters: str | None) -> str:
    """The fingerprint of a listing: its name and the filters that define its pages."""
    return json.dumps([listing, sorted((k, v) for k, v in filters.items() if v is not None)], ensure_ascii=False)


def _message(payload: str, scope: str) -> bytes:
    # Length-prefixed, so no (payload, scope) pair can be confused with another.
    return f"{len(scope)}:{scope}:{payload}".encode()


def _bad_cursor(reason: str) -> MalformedRequest:
    return MalformedRequest(f"invalid cursor: {reason}", [{"field": "cursor", "message": reason}])


def encode_cursor(last_key: dict[str, Any] | None, scope: str) -> str | None:
    """The cursor for the next page of the listing `scope`, or None on the last page."""
    if not last_key:
        return None
    raw = json.dumps(last_key, separators=(",", ":"), sort_keys=True, ensure_ascii=False).encode()
    payload = base64.urlsafe_b64encode(raw).decode().rstrip("=")
    return f"{payload}.{sign(_message(payload, scope), PURPOSE)}"


def decode_cursor(cursor: str | None, scope: str) -> dict[str, Any] | None:
    """The LastEvaluatedKey inside a cursor made for `scope`; 400 naming `cursor` otherwise."""
    if cursor is None or cursor == "":
        return None
    if len(cursor) > MAX_CURSOR_CHARS or not _SHAPE.fullmatch(cursor):
        raise _bad_cursor("not a cursor from this API")
    payload, _, signature = cursor.partition(".")
    if not verify(_message(payload, scope), signature, PURPOSE):
        raise _bad_cursor("not a cursor of this listing (another query's, altered, or from an older secret)")
    try:
        key = json.loads(base64.urlsafe_b64decode(payload + "=" * (-len(payload) % 4)))
    except (binascii.Error, ValueError):
        key = None
    # We signed it, so this holds; checked anyway so a leaked secret cannot feed odd keys to DynamoDB.
    if not (
        isinstance(key, dict)
        and 0 < len(key) <= 4
        and all(isinstance(v, dict) and len(v) == 1 and set(v) <= {"S", "N"} for v in key.values())
    ):
        raise _bad_cursor("not a cursor from this API")
    return key
