"""The unit tier's fixtures: the app in this process over in-memory stores, with no AWS.

`api` has the interface of the functional tier's (status and JSON per call, keys for alice, bob
and admin), so a test of what the API decides before any AWS call reads the same in both
tiers; here it passes with AWS unreachable (`make test-unit`). `settings` is read without an
endpoint. The stores are new for each test (so tests share nothing, in any order) and put back
to the DynamoDB ones afterwards (a worker runs functional tests too).
"""

from __future__ import annotations

import os
from collections.abc import Iterator

import pytest
from inprocess import InProcessApi, Memory, hold_signing_key

from chalicelib.platform.config import Settings, get_settings
from devtools.gateway.server import Gateway

KEYS = {"alice": "unit-key-alice", "bob": "unit-key-bob", "admin": "unit-key-admin"}


@pytest.fixture(scope="session")
def gateway() -> Iterator[Gateway]:
    """The local API Gateway's pipeline in front of the app (no socket: `InProcessApi` calls it)."""
    import app

    gateway = Gateway(app.app, os.environ["STAGE"])
    yield gateway
    gateway.close()


@pytest.fixture
def memory(monkeypatch: pytest.MonkeyPatch) -> Iterator[Memory]:
    """Fresh in-memory stores and recording sends for one test."""
    stores = Memory(KEYS)
    stores.install(monkeypatch)
    yield stores
    stores.uninstall()


@pytest.fixture
def signing_key(monkeypatch: pytest.MonkeyPatch) -> None:
    hold_signing_key(monkeypatch)


@pytest.fixture
def api(gateway: Gateway, memory: Memory) -> InProcessApi:
    return InProcessApi(gateway, KEYS)


@pytest.fixture
def settings() -> Settings:
    return get_settings()
