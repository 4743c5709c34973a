"""Bad input gets a clear 4xx naming the field: examples, property-based tests and a decoder fuzz pass."""

from __future__ import annotations

import json
from typing import Any

import pytest
from helpers import b64, jpeg_bytes, unique_author
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from chalicelib.tasks.envelope import Envelope, EnvelopeError, decode

OK = {"title": "Dune", "authors": ["Frank Herbert"]}


def _fields(body: dict[str, Any]) -> set[str]:
    return {f["field"] for f in body.get("fields", [])}


@pytest.mark.parametrize(
    ("body", "status", "field"),
    [
        ({**OK, "title": ""}, 422, "title"),
        ({**OK, "title": "   "}, 422, "title"),
        ({**OK, "title": "x" * 301}, 422, "title"),
        ({**OK, "title": 42}, 422, "title"),
        ({**OK, "title": "bell\x07"}, 422, "title"),
        ({"authors": ["A"]}, 422, "title"),
        ({"title": "T"}, 422, "authors"),
        ({**OK, "authors": []}, 422, "authors"),
        ({**OK, "authors": "Frank Herbert"}, 422, "authors"),
        ({**OK, "authors": [f"A{i}" for i in range(21)]}, 422, "authors"),
        ({**OK, "authors": ["x" * 201]}, 422, "authors.0"),
        ({**OK, "authors": ["Same", "same"]}, 422, "authors"),
        ({**OK, "authors": [None]}, 422, "authors.0"),
        ({**OK, "description": "d" * 10_001}, 422, "description"),
        ({**OK, "description": 7}, 422, "description"),
        ({**OK, "cover": "***not base64***"}, 422, "cover"),
        ({**OK, "cover": b64(b"plain text")}, 415, "cover"),
        ({**OK, "cover": "A" * 6_000_000}, 413, "cover"),
        ({**OK, "owner": "mallory"}, 422, "owner"),
        ([OK], 422, "body"),
        ("just a string", 422, "body"),
    ],
    ids=lambda v: v if isinstance(v, str | int) else None,
)
def test_create_book_rejects_bad_fields(api: Any, body: Any, status: int, field: str) -> None:
    got, payload = api.post("/books", body)
    assert got == status, payload
    assert field in _fields(payload), payload
    assert payload["message"]


def test_malformed_json_and_empty_body(api: Any) -> None:
    status, body = api.post("/books", raw=b'{"title": "unterminated')
    assert status == 400 and body["fields"][0]["field"] == "body" and "not valid JSON" in body["message"]
    status, body = api.post("/books", raw=b"")
    assert status == 400 and body["fields"][0]["field"] == "body"
    status, body = api.post("/books", raw=b"\xff\xfe\x00garbage")
    assert status == 400


def test_body_over_the_limit_is_413(api: Any, settings: Any) -> None:
    status, body = api.post("/books", raw=b"{" + b" " * settings.max_body_bytes + b"}")
    assert status == 413 and body["fields"][0]["field"] == "body"


def test_wrong_content_type_is_415(api: Any) -> None:
    status, body = api.post("/books", raw=json.dumps(OK).encode(), content_type="text/plain")
    assert status == 415
    assert "text/plain" in json.dumps(body)


def test_unicode_is_welcome(api: Any) -> None:
    body = {"title": "Мастер и Маргарита 🐈‍⬛", "authors": ["Михаил Булгаков", "李白"], "description": "שלום"}
    status, payload = api.post("/books", body)
    assert status == 202
    got = api.get(f"/books/{payload['book']['id']}", user=None)[1]
    assert got["title"] == body["title"] and got["authors"] == body["authors"] and got["description"] == "שלום"


@pytest.mark.parametrize(
    ("body", "field"),
    [({"email": "not-an-email"}, "email"), ({"email": ""}, "email"), ({}, "email"), ({"email": 5}, "email")],
)
def test_subscriber_email_is_validated(api: Any, body: dict[str, Any], field: str) -> None:
    status, payload = api.post(f"/authors/{unique_author().replace(' ', '%20')}/subscribers", body)
    assert status == 422 and field in _fields(payload)


def test_update_needs_a_field_and_valid_values(api: Any) -> None:
    status, created = api.post("/books", OK)
    book_id = created["book"]["id"]
    status, payload = api.put(f"/books/{book_id}", {})
    assert status == 422 and "body" in _fields(payload)
    status, payload = api.put(f"/books/{book_id}", {"authors": []})
    assert status == 422 and "authors" in _fields(payload)
    status, payload = api.put(f"/books/{book_id}", {"id": "other"})
    assert status == 422 and "id" in _fields(payload)
    assert api.put("/books/missing", {"title": "x"})[0] == 404


@pytest.mark.parametrize(
    ("query", "status", "field"),
    [
        ("/books?limit=0", 422, "limit"),
        ("/books?limit=101", 422, "limit"),
        ("/books?limit=ten", 422, "limit"),
        # A cursor is opaque: anything the API did not make is a bad request (400), see test_edge_cursors.py.
        ("/books?cursor=%%%", 400, "cursor"),
        ("/books?cursor=eyJhIjoxfQ", 400, "cursor"),
    ],
)
def test_bad_pagination_parameters(api: Any, query: str, status: int, field: str) -> None:
    got, body = api.get(query, user=None)
    assert got == status and field in _fields(body), body


def test_cover_over_the_limit_is_413(api: Any, settings: Any) -> None:
    status, created = api.post("/books", OK)
    big = jpeg_bytes(10, 10) + b"\x00" * (settings.max_cover_bytes + 1)
    status, body = api.put(f"/books/{created['book']['id']}/cover", raw=big, content_type="image/jpeg")
    assert status == 413 and body["fields"][0]["field"] == "body"


json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text(max_size=40),
    lambda children: st.lists(children, max_size=4) | st.dictionaries(st.text(max_size=10), children, max_size=4),
    max_leaves=12,
)
book_like = st.fixed_dictionaries(
    {},
    optional={
        "title": json_values | st.text(max_size=320),
        "authors": json_values | st.lists(st.text(max_size=220), max_size=22),
        "description": json_values | st.text(max_size=200),
        "cover": json_values | st.text(max_size=50),
    },
)


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(body=book_like | json_values)
def test_create_book_never_fails_with_a_5xx(api: Any, body: Any) -> None:
    status, payload = api.post("/books", body)
    assert status in (202, 400, 413, 415, 422), payload
    if status == 202:
        book = payload["book"]
        assert book["title"] == body["title"].strip()
        assert book["authors"] == [a.strip() for a in body["authors"]]
    else:
        assert payload["fields"] and all(f["field"] for f in payload["fields"])


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(author=st.text(max_size=300), limit=st.text(max_size=5), cursor=st.text(max_size=60))
def test_list_books_never_fails_with_a_5xx(api: Any, author: str, limit: str, cursor: str) -> None:
    from urllib.parse import urlencode

    status, payload = api.get("/books?" + urlencode({"author": author, "limit": limit, "cursor": cursor}), user=None)
    assert status in (200, 400, 422), payload


@settings(max_examples=500, deadline=None)
@given(body=st.text(max_size=300) | json_values.map(json.dumps))
def test_decoder_fuzz_accepts_or_explains(body: str) -> None:
    try:
        env = decode(body)
    except EnvelopeError as exc:
        assert str(exc)
    else:
        assert isinstance(env, Envelope) and env.task_id and env.task
        assert decode(env.encode()) == env


@settings(max_examples=300, deadline=None)
@given(
    task_id=st.text(min_size=1, max_size=128),
    name=st.text(min_size=1, max_size=50),
    args=st.lists(json_values, max_size=3),
    kwargs=st.dictionaries(st.text(max_size=8), json_values, max_size=3),
)
def test_decoder_round_trips_every_valid_envelope(
    task_id: str, name: str, args: list[Any], kwargs: dict[str, Any]
) -> None:
    env = Envelope(task_id=task_id, task=name, args=args, kwargs=kwargs)
    assert decode(env.encode()) == env
