"""Shared by the dashboard tests: test tasks, a signed-in HTTP session, dead-letter helpers."""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from typing import Any

import requests

from chalicelib.tasks.decorator import task
from chalicelib.tasks.envelope import Envelope
from chalicelib.tasks.errors import PermanentTaskError

HEALED: set[str] = set()


@task("tests.dashboard_ok")
def dashboard_ok(value: int) -> dict[str, int]:
    return {"value": value}


@task("tests.dashboard_boom", max_retries=0)
def dashboard_boom(token: str) -> dict[str, str]:
    """Fails (with a traceback, no retry left) until the test heals `token`: worth running again."""
    if token not in HEALED:
        raise RuntimeError(f"boom for {token}")
    return {"healed": token}


FLAKY: dict[str, int] = {}


@task("tests.dashboard_flaky", max_retries=3)
def dashboard_flaky(token: str, failures: int) -> dict[str, Any]:
    """Fails its first `failures` attempts (each a retry), then succeeds: an attempt history."""
    FLAKY[token] = FLAKY.get(token, 0) + 1
    if FLAKY[token] <= failures:
        raise RuntimeError(f"flaky attempt {FLAKY[token]} of {token}")
    return {"attempts": FLAKY[token]}


@task("tests.dashboard_parent")
def dashboard_parent(count: int) -> list[str]:
    """Sends `count` child tasks: the parent and children links."""
    return [dashboard_ok.delay(i) for i in range(count)]


@task("tests.dashboard_permanent")
def dashboard_permanent(token: str) -> dict[str, str]:
    """Fails permanently: running it again with the same arguments cannot help."""
    raise PermanentTaskError(f"never for {token}")


@dataclass
class Signed:
    """An HTTP client signed in to the dashboard (the cookie passed by hand: it is Secure, and
    `requests` would not send a Secure cookie over http://127.0.0.1 the way Chromium does)."""

    url: str
    cookie: str
    csrf: str

    def get(self, path: str, **kw: Any) -> requests.Response:
        return requests.get(self.url + path, headers={"Cookie": self.cookie}, timeout=30, **kw)

    def post(self, path: str, json: Any = None, csrf: str | None = None, **headers: str) -> requests.Response:
        sent = {"Cookie": self.cookie, "X-CSRF-Token": self.csrf if csrf is None else csrf, **headers}
        return requests.post(self.url + path, json={} if json is None else json, headers=sent, timeout=60)


def sign_in(url: str, key: str) -> Signed:
    response = requests.post(url + "/dashboard/login", json={"key": key}, timeout=30)
    assert response.status_code == 200, response.text
    return Signed(url, response.headers["Set-Cookie"].split(";")[0], response.json()["csrf_token"])


def dead_letter_marker(queue: Any, reason: str = "for the dashboard test") -> str:
    """Put one message of a succeeding task in `queue`'s DLQ; returns its task id."""
    from chalicelib.platform.sqs import dead_letter

    task_id = str(uuid.uuid4())
    body = Envelope(task_id=task_id, task="tests.dashboard_ok", args=[7]).encode()
    dead_letter(queue, body, reason, task_id, receives=1)  # as the worker does after one delivery
    return task_id


def clear_dead_letters(queue: Any) -> None:
    """Delete every message in `queue`'s DLQ: earlier tests' dead letters, which a one-process run
    (`make test-localstack`) piles up past the 50 the page lists, hiding a test's own marker."""
    from chalicelib.platform.sqs import delete_messages, peek

    while held := peek(queue.dlq_name, limit=1000, hold_seconds=30):
        delete_messages(queue.dlq_name, [m["ReceiptHandle"] for m in held])


def drop_dead_letter(queue: Any, task_id: str) -> None:
    """Remove this test's own message from `queue`'s DLQ (never a redrive: other tests' dead letters stay put)."""
    from chalicelib.ops.queues import delete_dead_letter, message_task
    from chalicelib.platform.sqs import peek

    for message in peek(queue.dlq_name):
        if message_task(message)[0] == task_id:
            delete_dead_letter(queue.key, message["MessageId"])
