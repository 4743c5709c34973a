"""Helpers shared by the tests (fixtures live in conftest.py)."""

from __future__ import annotations

import base64
import io
import json
import os
import subprocess
import sys
import threading
import time
import uuid
from collections.abc import Callable
from pathlib import Path
from typing import Any, cast

import requests


def eventually(check: Callable[..., Any], timeout: float = 30.0, interval: float = 0.2, what: str = "condition") -> Any:
    """Poll `check` until it returns something truthy; fail after `timeout` seconds."""
    deadline = time.monotonic() + timeout
    last: Any = None
    while time.monotonic() < deadline:
        last = check()
        if last:
            return last
        time.sleep(interval)
    raise AssertionError(f"timed out after {timeout}s waiting for {what}; last value: {last!r}")


def receive_own(
    sqs: Any, url: str, mine: Callable[[dict[str, Any]], bool], rounds: int = 10, **receive: Any
) -> list[dict[str, Any]]:
    """Receive this test's messages from a shared queue, leaving every other message as it was.

    Receives until one of this test's messages comes (or the queue yields nothing, or `rounds`
    receives); others' messages stay hidden meanwhile, so each receive reaches further into the
    queue (released at once, SQS would hand back the same first ten), and are made visible again
    at the end, so none waits out a visibility timeout in flight.
    """
    own: list[dict[str, Any]] = []
    others: list[dict[str, Any]] = []
    try:
        for _ in range(rounds):
            got = sqs.receive_message(QueueUrl=url, MaxNumberOfMessages=10, **receive).get("Messages", [])
            own += [m for m in got if mine(m)]
            others += [m for m in got if not mine(m)]
            if own or not got:
                break
    finally:
        for other in others:
            sqs.change_message_visibility(QueueUrl=url, ReceiptHandle=other["ReceiptHandle"], VisibilityTimeout=0)
    return own


def task_id_of(message: dict[str, Any]) -> str | None:
    """The task id of a message's envelope (None for any other body: S3's events, say)."""
    try:
        found = json.loads(message["Body"]).get("id")
    except (ValueError, AttributeError):
        return None
    return found if isinstance(found, str) else None


def jpeg_bytes(width: int = 1200, height: int = 800, color: tuple[int, int, int] = (180, 40, 40), **save: Any) -> bytes:
    """A real JPEG image."""
    from PIL import Image

    buf = io.BytesIO()
    Image.new("RGB", (width, height), color).save(buf, "JPEG", **save)
    return buf.getvalue()


def image_bytes(fmt: str, size: tuple[int, int] = (640, 480), mode: str = "RGB") -> bytes:
    """A real image in `fmt` (PNG, WEBP, …)."""
    from PIL import Image

    buf = io.BytesIO()
    color: Any = (20, 120, 200, 128) if mode == "RGBA" else (20, 120, 200)
    Image.new(mode, size, color).save(buf, fmt)
    return buf.getvalue()


def b64(data: bytes) -> str:
    return base64.b64encode(data).decode()


def s3_notification(*keys: str, bucket: str = "media") -> str:
    """The body S3 sends to SQS when objects are created (one record per key)."""
    records = [
        {
            "eventSource": "aws:s3",
            "eventName": "ObjectCreated:Post",
            "s3": {"bucket": {"name": bucket}, "object": {"key": key, "size": 12}},
        }
        for key in keys
    ]
    return json.dumps({"Records": records})


class JsonCalls:
    """Status and JSON per call, with per-user API keys, over whatever sends the request
    (`Api`: HTTP; tests/inprocess.py's `InProcessApi`: the gateway's pipeline in this process)."""

    keys: dict[str, str]

    def request(
        self, method: str, path: str, headers: dict[str, str] | None = None, data: bytes | None = None
    ) -> requests.Response:
        raise NotImplementedError

    def headers(self, user: str | None, content_type: str | None = "application/json") -> dict[str, str]:
        headers = {}
        if content_type:
            headers["Content-Type"] = content_type
        if user:
            headers["Authorization"] = f"Bearer {self.keys[user]}"
        return headers

    def call(
        self,
        method: str,
        path: str,
        user: str | None = "alice",
        body: Any = None,
        raw: bytes | None = None,
        content_type: str | None = "application/json",
    ) -> tuple[int, Any]:
        data = raw if raw is not None else (json.dumps(body).encode() if body is not None else b"")
        response = self.request(method, path, self.headers(user, content_type), data)
        text = response.content.decode() if response.content else ""
        try:
            payload = json.loads(text) if text else None
        except ValueError:
            payload = text
        return response.status_code, payload

    def get(self, path: str, user: str | None = "alice") -> tuple[int, Any]:
        return self.call("get", path, user, content_type=None)

    def post(self, path: str, body: Any = None, user: str | None = "alice", **kw: Any) -> tuple[int, Any]:
        return self.call("post", path, user, body, **kw)

    def put(self, path: str, body: Any = None, user: str | None = "alice", **kw: Any) -> tuple[int, Any]:
        return self.call("put", path, user, body, **kw)

    def delete(self, path: str, user: str | None = "alice") -> tuple[int, Any]:
        return self.call("delete", path, user, content_type=None)


class Api(JsonCalls):
    """The API over real HTTP (the local API Gateway), with JSON helpers and per-user API keys."""

    def __init__(self, url: str, keys: dict[str, str]) -> None:
        self.url, self.keys = url.rstrip("/"), keys
        self._local = threading.local()

    @property
    def session(self) -> requests.Session:
        """One keep-alive session per thread (a requests.Session is not thread-safe)."""
        if not hasattr(self._local, "session"):
            self._local.session = requests.Session()
        return cast("requests.Session", self._local.session)

    def request(
        self,
        method: str,
        path: str,
        headers: dict[str, str] | None = None,
        data: bytes | None = None,
        timeout: float = 120,
    ) -> requests.Response:
        """A raw HTTP request (any method, any headers) to the API."""
        return self.session.request(method.upper(), self.url + path, headers=headers, data=data, timeout=timeout)


def made_book(api: JsonCalls, author: str, title: str = "T", **extra: Any) -> dict[str, Any]:
    """POST /books as alice; the answer (it must be a 202)."""
    status, payload = api.post("/books", {"title": title, "authors": [author], **extra})
    assert status == 202, payload
    return cast("dict[str, Any]", payload)


def listed(api: JsonCalls, author: str) -> list[str]:
    """The ids of an author's books (the first 100), as anyone reads them."""
    status, page = api.get(f"/books?author={author.replace(' ', '%20')}&limit=100", user=None)
    assert status == 200
    return [book["id"] for book in page["items"]]


def error_fields(body: Any) -> list[str]:
    """The fields an error answer names, after checking it has the one error shape."""
    assert isinstance(body, dict) and set(body) == {"error", "message", "fields"}, body
    return [f["field"] for f in body["fields"]]


def answer(api: JsonCalls, method: str, path: str, headers: dict[str, str] | None = None) -> tuple[int, Any, Any]:
    """Status, headers and JSON body of a request (the `api` helpers answer status and body only)."""
    response = api.request(method, path, headers or {}, b"")
    return response.status_code, response.headers, response.json() if response.content else None


def post_with_key(api: JsonCalls, body: dict[str, Any], key: str, user: str = "alice") -> tuple[int, Any]:
    """POST /books with an Idempotency-Key header."""
    headers = {**api.headers(user), "Idempotency-Key": key}
    response = api.request("post", "/books", headers, json.dumps(body).encode())
    return response.status_code, response.json()


def json_lines(out: str) -> list[dict[str, Any]]:
    """The JSON lines of captured output (logs and EMF blobs), parsed."""
    return [json.loads(line) for line in out.splitlines() if line.startswith("{")]


def emf_metrics(lines: list[dict[str, Any]]) -> dict[str, list[dict[str, Any]]]:
    """Metric name → the EMF blobs that carry it, after checking each blob's structure."""
    found: dict[str, list[dict[str, Any]]] = {}
    for blob in lines:
        if "_aws" not in blob:
            continue
        assert isinstance(blob["_aws"]["Timestamp"], int)
        for directive in blob["_aws"]["CloudWatchMetrics"]:
            assert directive["Namespace"] == "Bookshelf"
            for dimension_set in directive["Dimensions"]:
                assert all(isinstance(blob[name], str) for name in dimension_set)
            for metric in directive["Metrics"]:
                assert metric["Name"] in blob, "every metric needs its value at the top level"
                found.setdefault(metric["Name"], []).append(blob | {"_unit": metric["Unit"]})
    return found


class Mailbox:
    """Emails recorded by the SES endpoint (`/_aws/ses`, LocalStack's shape)."""

    def __init__(self, endpoint: str) -> None:
        self.url = f"{endpoint}/_aws/ses"

    def messages(self, to: str | None = None) -> list[dict[str, Any]]:
        params = {"to": to} if to is not None else None  # the emulator filters; any other server may not
        messages = requests.get(self.url, params=params, timeout=5).json()["messages"]
        if to is None:
            return cast("list[dict[str, Any]]", messages)
        return [m for m in messages if to in m.get("Destination", {}).get("ToAddresses", [])]


def unique_email(tag: str = "reader") -> str:
    return f"{tag}-{uuid.uuid4().hex[:10]}@example.org"


def unique_author(tag: str = "Author") -> str:
    return f"{tag} {uuid.uuid4().hex[:8]}"


def dead_lettered(dlq_name: str) -> dict[str, dict[str, Any]]:
    """Task id → message of every message in a dead-letter queue (all of them, left in place).

    The id is the `task-id` attribute when the worker dead-lettered the message, else the
    envelope's `id` (a message moved by the redrive policy carries no attributes).
    """
    from chalicelib.platform.sqs import peek

    found: dict[str, dict[str, Any]] = {}
    for message in peek(dlq_name):
        task_id = message.get("MessageAttributes", {}).get("task-id", {}).get("StringValue")
        if not task_id:
            try:
                body = json.loads(message["Body"])
            except ValueError:
                body = None
            task_id = body.get("id") if isinstance(body, dict) else None
        if isinstance(task_id, str):
            found[task_id] = message
    return found


def task_record(api: Any, task_id: str) -> Any:
    """The task record (a dict) as an admin sees it over the API, or None.

    Typed `Any`: the tests index it directly (a None fails the test there), as they read any JSON."""
    status, body = api.get(f"/tasks/{task_id}", user="admin")
    return body if status == 200 else None


def final_record(api: Any, task_id: str, timeout: float = 60) -> dict[str, Any]:
    """Wait until the task's record is SUCCESS or FAILURE, and return it."""
    return cast(
        "dict[str, Any]",
        eventually(
            lambda: (r := task_record(api, task_id)) and r["status"] in ("SUCCESS", "FAILURE") and r,
            timeout=timeout,
            what=f"task {task_id}",
        ),
    )


def is_emulator(endpoint: str, timeout: float = 2) -> bool:
    """Whether `endpoint` is the embedded emulator (it answers `/_emulator/health`; LocalStack does not)."""
    try:
        return requests.get(f"{endpoint}/_emulator/health", timeout=timeout).ok
    except requests.RequestException:
        return False


def inner_pytest(folder: Path, *options: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    """A pytest session of its own over `folder` (its rootdir, no addopts), for tests of the harness."""
    isolated = ["-p", "no:cacheprovider", "-o", "addopts=", "--rootdir", str(folder)]
    return subprocess.run(
        [sys.executable, "-m", "pytest", *options, *isolated, str(folder)],
        env={**os.environ, **(env or {})},
        capture_output=True,
        text=True,
        timeout=120,
        cwd=folder,
    )
