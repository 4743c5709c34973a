"""Hostile input over HTTP: cursors, JSON depth, control characters, ids, outages, API keys.

Each test here failed on the code before this hardening (see the issue's items 2, 3, 4, 8,
14 and 15): 500s from forged cursors and deep JSON, CR/LF and NUL accepted, ids sent to
DynamoDB unchecked, 503s without Retry-After, a new key refused for a minute.
"""

from __future__ import annotations

import os
import subprocess
import sys
import uuid
from pathlib import Path
from typing import Any, cast
from urllib.parse import quote, urlparse

import pytest
from helpers import answer, error_fields, eventually, made_book, unique_author

ROOT = Path(__file__).resolve().parents[2]


def _q(value: str) -> str:
    return quote(value, safe="")


def _book(api: Any, author: str, title: str = "T") -> str:
    return cast("str", made_book(api, author, title)["book"]["id"])


def test_task_cursor_is_bound_to_its_filters(api: Any) -> None:
    author = unique_author("TaskCursor")
    for i in range(2):
        _book(api, author, f"T{i}")  # each dispatches books.notify_subscribers
    listing = "/tasks?name=books.notify_subscribers&limit=1"
    status, first = api.get(listing, user="admin")
    assert status == 200 and first["next_cursor"], first
    cursor = first["next_cursor"]
    assert api.get(f"{listing}&cursor={cursor}", user="admin")[0] == 200
    for other in ("/tasks?name=covers.resize&limit=1", "/tasks?limit=1", "/tasks?status=PENDING&limit=1"):
        status, body = api.get(f"{other}&cursor={cursor}", user="admin")
        assert status == 400 and error_fields(body) == ["cursor"], (other, body)


def test_ids_are_checked_before_any_aws_call(api: Any, faults: Any) -> None:
    """With every DynamoDB call failing, a bad id still answers 404/422: no call was made."""
    faults.add(service="dynamodb", code="ServiceUnavailable", status=503)
    long_id = "x" * 3000
    email = "a" * 250 + "@example.org"
    checks = [
        (api.get(f"/books/{long_id}", user=None), 404, "book_id"),
        (api.put(f"/books/{long_id}", {"title": "x"}), 404, "book_id"),
        (api.delete(f"/books/{long_id}"), 404, "book_id"),
        (api.put(f"/books/{long_id}/cover", raw=b"\xff\xd8\xff", content_type="image/jpeg"), 404, "book_id"),
        (api.get(f"/tasks/{'t' * 129}", user="admin"), 404, "task_id"),
        (api.get("/tasks/has%20space", user="admin"), 404, "task_id"),
        (api.delete(f"/authors/Someone/subscribers/{_q(email)}"), 422, "email"),
        (api.get(f"/authors/{'y' * 201}/subscribers"), 422, "name"),
        (api.get(f"/books?author={'y' * 201}", user=None), 422, "author"),
    ]
    faults.clear()
    for (status, body), expected, field in checks:
        assert status == expected and error_fields(body) == [field], (expected, field, body)


def test_aws_outage_is_a_503_json_with_retry_after(api: Any, faults: Any) -> None:
    book_id = _book(api, unique_author("Outage"))
    faults.add(service="dynamodb", action="GetItem", code="ServiceUnavailable", status=503)
    status, headers, body = answer(api, "GET", f"/books/{book_id}")
    faults.clear()
    assert status == 503 and body["error"] == "ServiceUnavailable" and body["fields"] == []
    assert int(headers["Retry-After"]) > 0


def test_key_store_outage_makes_the_authorizer_raise_503(faults: Any) -> None:
    from chalicelib.api import auth
    from chalicelib.platform.errors import ServiceUnavailable

    auth.forget_cached_keys()
    faults.add(service="ssm", action="GetParameter", code="ServiceUnavailable", status=503)
    try:
        with pytest.raises(ServiceUnavailable) as raised:
            auth.authenticate("Bearer some-key")
    finally:
        faults.clear()
        auth.forget_cached_keys()
    from chalicelib.api.http import headers_of, status_of

    assert status_of(raised.value) == 503 and int(headers_of(raised.value)["Retry-After"]) > 0


def test_key_store_outage_answers_503_over_http(api: Any, faults: Any) -> None:
    from chalicelib.api import auth

    api.keys["never-seen"] = f"unseen-{uuid.uuid4().hex}"  # not in any authorizer cache
    auth.forget_cached_keys()
    faults.add(service="ssm", action="GetParameter", code="ServiceUnavailable", status=503)
    try:
        status, headers, body = answer(api, "GET", "/queues", api.headers("never-seen", None))
    finally:
        faults.clear()
        auth.forget_cached_keys()
    assert status == 503 and body["error"] == "ServiceUnavailable" and body["fields"] == []
    assert int(headers["Retry-After"]) > 0


def _ops(*args: str, **env: str) -> subprocess.CompletedProcess[str]:
    base = {k: v for k, v in os.environ.items() if k != "AWS_ENDPOINT_URL"}
    return subprocess.run(
        [sys.executable, "-m", "devtools.ops", *args],
        cwd=ROOT,
        env={**base, **env},
        capture_output=True,
        text=True,
        timeout=120,
    )


def test_local_stage_without_an_emulator_refuses_clearly() -> None:
    from devtools.emulator.process import free_port

    refused = _ops("--stage", "local", "create-api-key", "eve", EMULATOR_PORT=str(free_port()))
    assert refused.returncode != 0 and refused.stdout == ""
    assert "make run" in refused.stderr and "Traceback" not in refused.stderr, refused.stderr


def test_a_key_made_by_the_ops_command_works_at_once(api: Any, endpoint: str) -> None:
    """The API process cached the key list a moment ago; the new key must not wait for it to expire."""
    missing = f"/tasks/{uuid.uuid4()}"
    assert api.get(missing, user="alice")[0] == 404  # authorized (and the key list cached)
    made = _ops("create-api-key", "carol", AWS_ENDPOINT_URL=endpoint)
    assert made.returncode == 0, made.stderr
    api.keys["carol"] = made.stdout.strip().splitlines()[-1]
    eventually(lambda: api.get(missing, user="carol")[0] == 404, timeout=5, what="the new key to be accepted")


def test_local_stage_uses_the_running_emulator(api: Any, endpoint: str) -> None:
    made = _ops("--stage", "local", "create-api-key", "dave", EMULATOR_PORT=str(urlparse(endpoint).port))
    assert made.returncode == 0, made.stderr
    api.keys["dave"] = made.stdout.strip().splitlines()[-1]
    eventually(lambda: api.get(f"/tasks/{uuid.uuid4()}", user="dave")[0] == 404, timeout=5, what="dave's key")
