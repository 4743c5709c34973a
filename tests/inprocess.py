"""The API in this process over in-memory stores: the unit tier's `api` (tests/unit/conftest.py).

The request goes through the same local API Gateway pipeline as over HTTP (route, authorizer,
proxy event, the app, the answer), called directly instead of through a socket; the stores
behind it are the in-memory ones and the sends are recorded, so nothing reaches AWS. What only
HTTP shows (framing, keep-alive, Content-Length, oversize bodies on the wire) is tested in
tests/functional and tests/tooling/test_gateway.py.
"""

from __future__ import annotations

import time
from collections.abc import Sequence
from typing import Any
from urllib.parse import parse_qs, urlsplit

import requests
from helpers import JsonCalls
from requests.structures import CaseInsensitiveDict
from requests.utils import requote_uri

from chalicelib.api import auth
from chalicelib.books import store as books
from chalicelib.books.store import MemoryBookStore
from chalicelib.covers import storage
from chalicelib.mail import store as mailstore
from chalicelib.mail.store import MemoryMailStore
from chalicelib.platform import signing
from chalicelib.subscriptions import service as subscriptions_service
from chalicelib.subscriptions import store as subscriptions
from chalicelib.subscriptions.store import MemorySubscriptionStore
from chalicelib.tasks import dispatch, outbox
from chalicelib.tasks.registry import Signature
from devtools.gateway.invoke import HttpRequest
from devtools.gateway.server import Gateway


def hold_signing_key(patch: Any) -> None:
    """The stage's signing secret (cursors, tokens), held as `signing` keeps it after reading it
    from Secrets Manager, so nothing is read."""
    patch.setitem(signing._cache, "key", b"unit-test-secret")
    patch.setitem(signing._cache, "at", time.monotonic())


class Launched:
    """A send started while the write commits: the double answers as SQS accepting them all."""

    def __init__(self, messages: Sequence[outbox.Outgoing]) -> None:
        self.messages = list(messages)

    def committed(self) -> int:
        return len(self.messages)


class Sends:
    """What the code under test sent: its task launches (names and arguments, per launch),
    dispatched tasks, and the S3 objects it stored and prefixes it deleted."""

    def __init__(self) -> None:
        self.launches: list[list[tuple[str, tuple[Any, ...]]]] = []
        self.dispatched: list[tuple[str, tuple[Any, ...]]] = []
        self.objects: dict[str, bytes] = {}
        self.deleted: list[str] = []

    def launch(self, messages: Sequence[outbox.Outgoing]) -> Launched:
        self.launches.append([(m.envelope.task, tuple(m.envelope.args)) for m in messages])
        return Launched(messages)

    def dispatch(self, signatures: Sequence[Signature], owner: str | None = None) -> list[str]:
        self.dispatched += [(sig.task.name, tuple(sig.args)) for sig in signatures]
        return [sig.task_id for sig in signatures]

    def put(self, key: str, data: bytes, content_type: str) -> None:
        self.objects[key] = data

    def delete_prefix(self, prefix: str) -> int:
        self.deleted.append(prefix)
        gone = [key for key in self.objects if key.startswith(prefix)]
        for key in gone:
            del self.objects[key]
        return len(gone)

    def install(self, patch: Any) -> None:
        """The book service's sends and S3 writes recorded here (`patch`: a MonkeyPatch), and the
        signing key held."""
        patch.setattr(dispatch, "launch", self.launch)
        patch.setattr(storage, "put", self.put)
        patch.setattr(storage, "delete_prefix", self.delete_prefix)
        hold_signing_key(patch)


class Memory:
    """The stores a unit test's API runs over, and what it sent (`sends`)."""

    def __init__(self, keys: dict[str, str]) -> None:
        self.books = MemoryBookStore()
        self.subscriptions = MemorySubscriptionStore()
        self.mail = MemoryMailStore()
        self.keys = keys
        self.sends = Sends()

    def stored_keys(self) -> dict[str, Any]:
        """The API key list as the SSM parameter holds it (hashes), with `admin` an admin."""
        return {auth.hash_key(key): {"user": user, "admin": user == "admin"} for user, key in self.keys.items()}

    def install(self, patch: Any) -> None:
        """Put the stores and doubles in place with `patch` (a MonkeyPatch, undone after the test)."""
        books.configure(self.books)
        subscriptions.configure(self.subscriptions)
        mailstore.configure(self.mail)
        auth.configure_keys(self.stored_keys)
        self.sends.install(patch)
        patch.setattr(subscriptions_service, "dispatch", self.sends.dispatch)

    @staticmethod
    def uninstall() -> None:
        books.configure(None)
        subscriptions.configure(None)
        mailstore.configure(None)
        auth.configure_keys(None)


class InProcessApi(JsonCalls):
    """`helpers.Api`'s interface (status and JSON per call, per-user keys), without a socket."""

    def __init__(self, gateway: Gateway, keys: dict[str, str]) -> None:
        self.gateway, self.keys = gateway, keys

    def request(
        self, method: str, path: str, headers: dict[str, str] | None = None, data: bytes | None = None
    ) -> requests.Response:
        """One request through the gateway's pipeline, answered as a `requests.Response`."""
        url = urlsplit(requote_uri(path))  # the path as requests would put it on the wire
        body = data or b""
        sent = {"Host": "127.0.0.1", "Content-Length": str(len(body)), **(headers or {})}
        request = HttpRequest(
            method=method.upper(),
            path=url.path or "/",
            query=parse_qs(url.query, keep_blank_values=True),
            headers=list(sent.items()),
            body=body,
            source_ip="127.0.0.1",
        )
        answer = self.gateway.handle(request)
        response = requests.Response()
        response.status_code = answer.status
        merged: dict[str, str] = {}
        for name, value in answer.headers:
            merged[name] = f"{merged[name]}, {value}" if name in merged else value
        response.headers = CaseInsensitiveDict(merged)
        response._content = b"" if method.upper() == "HEAD" else answer.body
        response.encoding = "utf-8"
        return response
