"""Listing cursors: signed with the stage's one secret (held here as `signing` keeps it after
reading it from Secrets Manager), bound to their listing, refused when forged."""

from __future__ import annotations

import base64
import json

import pytest

from chalicelib.platform.errors import MalformedRequest
from chalicelib.platform.pagination import decode_cursor, encode_cursor, listing_scope

pytestmark = pytest.mark.usefixtures("signing_key")

KEY = {"author_key": {"S": "le guin"}, "sort_key": {"S": "2026-01-01T00:00:00#abc"}}


def test_cursor_round_trips_within_its_listing() -> None:
    scope = listing_scope("books", author="le guin")
    cursor = encode_cursor(KEY, scope)
    assert cursor is not None and "le guin" not in cursor
    assert decode_cursor(cursor, scope) == KEY
    assert encode_cursor(None, scope) is None and encode_cursor({}, scope) is None
    assert decode_cursor(None, scope) is None and decode_cursor("", scope) is None


def _fails(cursor: str, scope: str) -> None:
    with pytest.raises(MalformedRequest) as raised:
        decode_cursor(cursor, scope)
    assert [f["field"] for f in raised.value.fields] == ["cursor"]


def test_cursor_of_another_listing_is_refused() -> None:
    cursor = encode_cursor(KEY, listing_scope("books", author="le guin"))
    assert cursor is not None
    _fails(cursor, listing_scope("books", author="herbert"))
    _fails(cursor, listing_scope("books"))
    _fails(cursor, listing_scope("subscribers", author="le guin", owner="alice"))


def test_forged_tampered_and_garbage_cursors_are_refused() -> None:
    scope = listing_scope("books")
    cursor = encode_cursor(KEY, scope)
    assert cursor is not None
    payload, signature = cursor.split(".")
    forged = base64.urlsafe_b64encode(json.dumps({"foo": {"S": "x"}}).encode()).decode().rstrip("=")
    for bad in (
        forged,
        f"{forged}.{signature}",
        f"{payload[:-2]}AA.{signature}",
        f"{payload}.{signature[:-1]}",
        f"{payload}.",
        "%%%",
        "eyJhIjoxfQ",
        "é.é",
        "x" * 5000,
        cursor + "." + signature,
    ):
        _fails(bad, scope)
