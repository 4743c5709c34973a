"""Hostile input through the API in this process: cursors, JSON depth, control characters,
invalid UTF-8, bounded error bodies, missing keys. All of it is refused before any AWS call (there
is none to make here). Outages and what only HTTP shows are in tests/functional/test_input_http.py."""

from __future__ import annotations

import base64
import json
from typing import Any, cast
from urllib.parse import quote

import pytest
from helpers import answer, error_fields, made_book, unique_author, unique_email

OK = {"title": "Dune", "authors": ["Frank Herbert"]}

FORGED = base64.urlsafe_b64encode(json.dumps({"foo": {"S": "x"}}).encode()).decode().rstrip("=")


def _q(value: str) -> str:
    return quote(value, safe="")


def _book(api: Any, author: str, title: str = "T") -> str:
    return cast("str", made_book(api, author, title)["book"]["id"])


def test_book_cursor_pages_its_own_listing_and_no_other(api: Any) -> None:
    mine, other = unique_author("CursorA"), unique_author("CursorB")
    made = {_book(api, mine, f"A{i}") for i in range(3)}
    _book(api, other)
    status, first = api.get(f"/books?author={_q(mine)}&limit=1", user=None)
    assert status == 200 and first["next_cursor"]
    cursor = first["next_cursor"]
    status, second = api.get(f"/books?author={_q(mine)}&limit=1&cursor={cursor}", user=None)
    assert status == 200 and second["items"][0]["id"] in made - {first["items"][0]["id"]}
    for elsewhere in (f"/books?author={_q(other)}&limit=1&cursor={cursor}", f"/books?limit=1&cursor={cursor}"):
        status, body = api.get(elsewhere, user=None)
        assert status == 400 and error_fields(body) == ["cursor"], (elsewhere, body)


@pytest.mark.parametrize(
    "listing", ["/books?author=Someone", "/books?limit=5", "/tasks?limit=5", "/tasks?status=FAILURE", "/tasks?name=x"]
)
@pytest.mark.parametrize(
    "cursor", [FORGED, FORGED + ".c2lnbmF0dXJl", "%%%", "x" * 3000], ids=["forged", "signed?", "junk", "long"]
)
def test_forged_cursors_are_a_400_naming_cursor(api: Any, listing: str, cursor: str) -> None:
    status, body = api.get(f"{listing}&cursor={_q(cursor)}", user="admin")
    assert status == 400 and error_fields(body) == ["cursor"], body


def test_tampered_cursor_is_refused(api: Any) -> None:
    author = unique_author("Tamper")
    for i in range(2):
        _book(api, author, f"T{i}")
    cursor = api.get(f"/books?author={_q(author)}&limit=1", user=None)[1]["next_cursor"]
    payload, signature = cursor.split(".")
    flipped = payload[:-1] + ("A" if payload[-1] != "A" else "B")
    status, body = api.get(f"/books?author={_q(author)}&limit=1&cursor={flipped}.{signature}", user=None)
    assert status == 400 and error_fields(body) == ["cursor"]


def test_subscriber_cursor_is_bound_to_author_and_caller(api: Any) -> None:
    author, other = unique_author("SubCursor"), unique_author("SubOther")
    for _ in range(3):
        assert api.post(f"/authors/{_q(author)}/subscribers", {"email": unique_email()}, user="alice")[0] in (200, 201)
    status, first = api.get(f"/authors/{_q(author)}/subscribers?limit=1", user="alice")
    assert status == 200 and first["next_cursor"], first
    cursor = first["next_cursor"]
    assert api.get(f"/authors/{_q(author)}/subscribers?limit=1&cursor={cursor}", user="alice")[0] == 200
    for path, user in ((f"/authors/{_q(author)}", "bob"), (f"/authors/{_q(other)}", "alice")):
        status, body = api.get(f"{path}/subscribers?limit=1&cursor={cursor}", user=user)
        assert status == 400 and error_fields(body) == ["cursor"], (path, user, body)


HOSTILE_BODIES = {
    "100k [": b"[" * 100_000,
    "100k {": b"{" * 100_000,
    "100k nested objects": b'{"a":' * 100_000,
    "deep inside a field": b'{"title": "t", "authors": ' + b"[" * 50_000 + b"]" * 50_000 + b"}",
    "33 levels": b'{"title": "t", "authors": ["a"], "description": ' + b"[" * 32 + b"]" * 32 + b"}",
}


@pytest.mark.parametrize("raw", HOSTILE_BODIES.values(), ids=HOSTILE_BODIES.keys())
def test_deeply_nested_json_is_a_400(api: Any, raw: bytes) -> None:
    status, body = api.post("/books", raw=raw)
    assert status == 400 and error_fields(body) == ["body"], body


def test_deep_json_on_every_json_route(api: Any) -> None:
    book_id = _book(api, unique_author("Deep"))
    for method, path in (("put", f"/books/{book_id}"), ("post", f"/authors/{_q(unique_author())}/subscribers")):
        status, body = getattr(api, method)(path, raw=b"[" * 100_000)
        assert status == 400 and error_fields(body) == ["body"], (path, body)


def test_nesting_within_the_limit_reaches_validation(api: Any) -> None:
    raw = b'{"title": "t", "authors": ["a"], "description": ' + b"[" * 31 + b"]" * 31 + b"}"
    status, body = api.post("/books", raw=raw)
    assert status == 422 and error_fields(body) == ["description"]


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({**OK, "title": "Line1\r\nBcc: v@example.org"}, "title"),
        ({**OK, "title": "tab\tinside"}, "title"),
        ({**OK, "title": "nel\u0085inside"}, "title"),
        ({**OK, "title": "evil\u202etxt.exe"}, "title"),
        ({**OK, "authors": ["Line\nBreak"]}, "authors.0"),
        ({**OK, "authors": ["Next\u0085Line"]}, "authors.0"),
        ({**OK, "authors": ["Frank", "Over\u202eride"]}, "authors.1"),
        ({**OK, "authors": ["Iso\u2066late"]}, "authors.0"),
        ({**OK, "authors": ["nul\u0000"]}, "authors.0"),
        ({**OK, "description": "windows\r\nline"}, "description"),
        ({**OK, "description": "nul\u0000"}, "description"),
        ({**OK, "description": "bidi\u2067"}, "description"),
        ({**OK, "description": "c1\u009b[31m"}, "description"),
    ],
)
def test_control_and_bidi_characters_are_refused_in_text_fields(api: Any, body: dict[str, Any], field: str) -> None:
    status, payload = api.post("/books", body)
    assert status == 422 and field in error_fields(payload), payload


def test_description_keeps_newlines_and_tabs(api: Any) -> None:
    text = "First paragraph.\n\n\tIndented second paragraph.\n"
    status, payload = api.post("/books", {**OK, "description": text})
    assert status == 202
    assert api.get(f"/books/{payload['book']['id']}", user=None)[1]["description"] == text


def test_update_refuses_control_characters(api: Any) -> None:
    book_id = _book(api, unique_author("Update"))
    for body, field in (({"title": "x\ny"}, "title"), ({"authors": ["a\u202eb"]}, "authors.0")):
        status, payload = api.put(f"/books/{book_id}", body)
        assert status == 422 and field in error_fields(payload), payload


@pytest.mark.parametrize(
    ("method", "path", "field"),
    [
        ("post", "/authors/x%00y/subscribers", "name"),
        ("get", "/authors/x%0Ay/subscribers", "name"),
        ("get", "/authors/x%C2%85y/subscribers", "name"),
        ("get", "/authors/x%E2%80%AEy/subscribers", "name"),
        ("delete", "/authors/Someone/subscribers/a%0D%0Abcc%40example.org", "email"),
        ("get", "/books/x%00y", "book_id"),
        ("delete", "/books/x%0Ay", "book_id"),
        ("get", "/tasks/a%0Ab", "task_id"),
        ("get", "/books?author=x%00y", "author"),
        ("get", "/tasks?name=a%0Db", "name"),
    ],
)
def test_control_characters_in_path_and_query_parameters_are_a_422(
    api: Any, method: str, path: str, field: str
) -> None:
    user = "admin" if path.startswith("/tasks") else "alice"
    if method == "post":
        status, body = api.post(path, {"email": unique_email()}, user=user)
    else:
        status, body = getattr(api, method)(path, user=user)
    assert status == 422 and error_fields(body) == [field], body


def test_missing_key_is_a_401_with_the_scheme_to_use(api: Any) -> None:
    status, headers, body = answer(api, "GET", "/queues")
    assert status == 401 and body["error"] == "Unauthorized" and body["fields"] == []
    assert headers["WWW-Authenticate"] == "Bearer"


@pytest.mark.parametrize(
    ("route", "body", "left_out"),
    [
        ("/books", {**OK, **{f"k{i:06d}": 1 for i in range(120_000)}}, 120_000 - 20),  # a 502 before
        ("/books", {**OK, "k" * 3_000_000: 1}, 0),  # one key of 3 MB, named twice
        ("/authors/Someone/subscribers", {f"x{i:06d}": 1 for i in range(90_000)}, 90_000 + 1 - 20),  # + email
    ],
    ids=["120k-unknown-keys", "one-3MB-key", "90k-keys-subscribe"],
)
def test_every_error_body_is_bounded_whatever_the_input(
    api: Any, route: str, body: dict[str, Any], left_out: int
) -> None:
    response = api.request("POST", route, api.headers("alice"), json.dumps(body).encode())
    assert response.status_code == 422, response.text[:300]
    assert len(response.content) < 8 * 1024, len(response.content)
    payload = response.json()
    assert set(payload) == {"error", "message", "fields"} and payload["error"] == "ValidationError"
    assert 1 <= len(payload["fields"]) <= 20
    assert all(len(f["field"]) <= 200 and len(f["message"]) <= 200 for f in payload["fields"])
    assert len(payload["message"]) <= 1000
    if left_out:  # the message says how many are not listed
        assert payload["message"].endswith(f"({left_out:,} more fields not listed)"), payload["message"]


def test_deleting_someone_elses_subscription_answers_as_deleting_none(api: Any) -> None:
    author = unique_author("Oracle")
    path = f"/authors/{_q(author)}/subscribers"
    taken, free = unique_email("taken"), unique_email("free")
    assert api.post(path, {"email": taken}, user="alice")[0] == 201

    theirs = api.request("DELETE", f"{path}/{_q(taken)}", api.headers("bob", None))
    nobody = api.request("DELETE", f"{path}/{_q(free)}", api.headers("bob", None))
    assert theirs.status_code == nobody.status_code == 404
    assert theirs.content == nobody.content  # the same bytes: nothing tells bob the address is taken
    assert set(theirs.json()) == {"error", "message", "fields"}
    assert api.get(path, user="alice")[1]["items"][0]["email"] == taken  # and alice's is still there


@pytest.mark.parametrize(
    ("raw", "field"),
    [
        (b'{"title": "Caf\xe9", "authors": ["A"]}', "title"),  # Latin-1, not UTF-8
        (b'{"title": "T", "authors": ["\xff\xfe"]}', "authors.0"),
        (b'{"title": "T", "authors": ["A"], "description": "half \xe2\x82 a euro"}', "description"),
        (b'{"title": "T", "authors": ["A"], "description": "ls\xe2\x80\xa8inside"}', "description"),  # U+2028
        (b'{"title": "T", "authors": ["A"], "description": "ps\\u2029inside"}', "description"),  # U+2029
        (b'{"title": "T", "authors": ["A"], "description": "nel\\u0085inside"}', "description"),
    ],
    ids=["latin1-title", "bytes-author", "cut-description", "ls-description", "ps-description", "nel-description"],
)
def test_invalid_utf8_and_separators_are_refused_in_every_text_field(api: Any, raw: bytes, field: str) -> None:
    status, payload = api.post("/books", raw=raw)
    assert status == 422 and error_fields(payload) == [field], payload
    book_id = _book(api, unique_author("Utf8"))
    status, payload = api.put(f"/books/{book_id}", raw=raw)
    assert status == 422 and error_fields(payload) == [field], payload


def test_invalid_utf8_is_refused_in_the_address_and_in_parameters(api: Any) -> None:
    status, payload = api.post("/authors/Someone/subscribers", raw=b'{"email": "caf\xe9@example.org"}')
    assert status == 422 and error_fields(payload) == ["email"], payload
    for path, field in (
        ("/books?author=caf%E9", "author"),
        ("/authors/caf%E9/subscribers", "name"),
        (f"/authors/Someone/subscribers/{_q('a@example.org')}%FF", "email"),
    ):
        method = "DELETE" if path.count("/") == 4 else "GET"
        response = api.request(method, path, api.headers("alice", None))
        assert response.status_code == 422 and error_fields(response.json()) == [field], (path, response.text)


def test_a_description_keeps_real_text_in_any_script(api: Any) -> None:
    text = "Мастер и Маргарита.\n\t\u05e9\u05dc\u05d5\u05dd — 李白 🐈‍⬛ \u200f(mark)"
    status, payload = api.post("/books", {**OK, "description": text})
    assert status == 202, payload
    assert api.get(f"/books/{payload['book']['id']}", user=None)[1]["description"] == text
