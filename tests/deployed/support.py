"""HTTP helpers of the deployed suite: the API, MiniStack's mailbox, waiting."""

from __future__ import annotations

import io
import re
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import requests
from PIL import Image

LINK = re.compile(r"https?://[^\s<>]+/subscriptions/(?:confirm|unsubscribe)\?token=[^\s<>\"]+")


@dataclass
class Target:
    """What devtools/backends/ministack.py deployed."""

    stage: str
    endpoint: str
    api_url: str
    rest_api_id: str
    keys: dict[str, str]
    deploy_seconds: float
    log: str
    stack_stage: str
    stack_api_url: str
    stack_keys: dict[str, str]
    stack_package_seconds: float
    stack_deploy_seconds: float

    def name(self, resource: str, stage: str | None = None) -> str:
        """A deployed resource's name (`bookshelf-<stage>-<resource>`)."""
        return f"bookshelf-{stage or self.stage}-{resource}"


def eventually(check: Callable[..., Any], timeout: float = 60.0, interval: float = 0.5, what: str = "condition") -> Any:
    """Poll `check` until it returns something truthy; fail with `what` after `timeout` seconds."""
    deadline = time.monotonic() + timeout
    while True:
        result = check()
        if result:
            return result
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout:.0f}s waiting for {what}")
        time.sleep(interval)


class Api:
    """The deployed API Gateway stage, called over HTTP with the API keys as bearer tokens."""

    def __init__(self, url: str, keys: dict[str, str]) -> None:
        self.url, self.keys, self.http = url.rstrip("/"), keys, requests.Session()

    def call(
        self,
        method: str,
        path: str,
        body: Any = None,
        user: str | None = "owner",
        data: bytes | None = None,
        content_type: str = "application/json",
        headers: dict[str, str] | None = None,
    ) -> tuple[int, Any]:
        sent = {"Content-Type": content_type, **(headers or {})}
        if user:
            sent["Authorization"] = f"Bearer {self.keys[user]}"
        answer = self.http.request(
            method, self.url + path, json=body if data is None else None, data=data, headers=sent, timeout=60
        )
        try:
            return answer.status_code, answer.json()
        except ValueError:
            return answer.status_code, answer.text

    def get(self, path: str, user: str | None = "owner") -> tuple[int, Any]:
        return self.call("GET", path, user=user)

    def post(self, path: str, body: Any = None, user: str | None = "owner", **kw: Any) -> tuple[int, Any]:
        return self.call("POST", path, body, user=user, **kw)

    def put(self, path: str, body: Any = None, user: str | None = "owner", **kw: Any) -> tuple[int, Any]:
        return self.call("PUT", path, body, user=user, **kw)

    def delete(self, path: str, user: str | None = "owner") -> tuple[int, Any]:
        return self.call("DELETE", path, user=user)

    def book(self, book_id: str) -> dict[str, Any]:
        status, book = self.get(f"/books/{book_id}", user=None)
        assert status == 200, book
        return dict(book)

    def ready(self, book_id: str, timeout: float = 120) -> dict[str, Any]:
        """Wait for the book's cover to be `ready`; fails at once if it became `failed`."""

        def check() -> dict[str, Any] | None:
            book = self.book(book_id)
            assert book["cover_status"] != "failed", book
            return book if book["cover_status"] == "ready" else None

        return dict(eventually(check, timeout=timeout, what=f"book {book_id} ready"))

    def task(self, task_id: str) -> dict[str, Any]:
        status, record = self.get(f"/tasks/{task_id}", user="ops")
        assert status == 200, record
        return dict(record)


class Mailbox:
    """The mail MiniStack's SES recorded (`GET /_ministack/ses/messages`)."""

    def __init__(self, endpoint: str) -> None:
        self.url = f"{endpoint}/_ministack/ses/messages"

    def messages(self, to: str) -> list[dict[str, Any]]:
        answer = requests.get(self.url, timeout=30)
        answer.raise_for_status()
        found = [m for ms in answer.json()["messages"].values() for m in ms]
        return [m for m in found if to in m.get("To", [])]


def links(message: dict[str, Any], kind: str) -> list[str]:
    return [u for u in LINK.findall(message.get("BodyText") or "") if f"/subscriptions/{kind}?" in u]


def image(fmt: str = "JPEG", size: tuple[int, int] = (640, 480), color: tuple[int, int, int] = (180, 40, 40)) -> bytes:
    out = io.BytesIO()
    Image.new("RGB", size, color).save(out, fmt)
    return out.getvalue()


def unique(tag: str) -> str:
    return f"{tag} {uuid.uuid4().hex[:10]}"
