"""Schemathesis against the running API: the published contract (`GET /openapi.json`) is kept.

Every operation of the document is called over HTTP through the local API Gateway (the embedded
emulator behind it) with cases generated from the document, valid ones and invalid ones, with an
admin key (Bearer) for the API and a fresh dashboard session (cookie and CSRF token) for the
dashboard. Each answer must be no 5xx, a documented status, a documented Content-Type, match its
schema and carry its documented headers; invalid input must be refused. Bounded by
CONTRACT_EXAMPLES per operation and mode, so `make test-contract` takes a few minutes on 2 cores
(not part of `make test`: it writes books and subscriptions and redrives the DLQs, so it runs
alone, in its own session and stage).
"""

from __future__ import annotations

import itertools
import os
import time
import uuid
from collections import Counter
from collections.abc import Iterator
from typing import Any

import pytest
import requests
import schemathesis
from hypothesis import HealthCheck, settings
from schemathesis import GenerationMode
from schemathesis.checks import not_a_server_error
from schemathesis.specs.openapi.checks import (
    content_type_conformance,
    negative_data_rejection,
    response_headers_conformance,
    response_schema_conformance,
    status_code_conformance,
)

from chalicelib.api import openapi

pytestmark = pytest.mark.contract

EXAMPLES = int(os.environ.get("CONTRACT_EXAMPLES", "40"))
CHECKS = [
    not_a_server_error,
    status_code_conformance,
    content_type_conformance,
    response_schema_conformance,
    negative_data_rejection,
    response_headers_conformance,
]
STATS: Counter[str] = Counter()  # cases by answer status
SEEN: set[str] = set()  # operations called


# Built when the module is collected (the document needs no AWS); the gateway's URL is given per call.
schema = schemathesis.openapi.from_dict(
    openapi.document(),
    config=schemathesis.Config.from_dict(
        {
            "seed": int(os.environ.get("CONTRACT_SEED", "21")),
            # Credentials are the test's (below), not generated: every case gets past the door.
            "generation": {"mode": "all", "max-examples": EXAMPLES, "with-security-parameters": False},
            "phases": {"stateful": {"enabled": False}},
        }
    ),
)


@pytest.fixture(scope="module", autouse=True)
def _report(request: pytest.FixtureRequest) -> Iterator[None]:
    """Say what ran: cases, operations, time (the issue's closing note quotes it)."""
    began = time.monotonic()
    yield
    capture = request.config.pluginmanager.get_plugin("capturemanager")
    if capture is not None and STATS:
        statuses = ", ".join(f"{status}: {count}" for status, count in sorted(STATS.items()))
        with capture.global_and_fixture_disabled():
            print(
                f"\nschemathesis: {STATS.total()} cases over {len(SEEN)} operations in {time.monotonic() - began:.0f}s"
                f" (answers by status: {statuses})"
            )


def _dashboard_session(gateway_url: str, admin_key: str) -> dict[str, str]:
    """A fresh session per case: a fuzzed sign-out must not end the next case's."""
    answer = requests.post(f"{gateway_url}/dashboard/login", json={"key": admin_key}, timeout=30)
    assert answer.status_code == 200, answer.text
    cookie = answer.headers["Set-Cookie"].split(";", 1)[0]
    return {"Cookie": cookie, "X-CSRF-Token": answer.json()["csrf_token"]}


def _credentials(case: Any, gateway_url: str, keys: dict[str, str]) -> dict[str, str]:
    names = {name for requirement in case.operation.definition.raw.get("security", []) for name in requirement}
    if "apiKey" in names:
        return {"Authorization": f"Bearer {keys['admin']}"}
    if "dashboardSession" in names:
        return _dashboard_session(gateway_url, keys["admin"])
    return {}


@pytest.fixture
def real_ids(request: pytest.FixtureRequest, gateway_url: str, keys: dict[str, str]) -> dict[str, str]:
    """Ids that exist, for the operation under test: a random id only ever meets a 404.

    A book and a subscription of the admin (so its writes are allowed), a task of that book,
    a queue and an asset; every other valid case of an operation with path parameters uses them.
    """
    path = request.node.callspec.id if hasattr(request.node, "callspec") else request.node.name
    if "{" not in path:
        return {}
    tag = uuid.uuid4().hex[:8]
    author, email, auth = f"Contract Author {tag}", f"contract-{tag}@example.org", f"Bearer {keys['admin']}"
    book = requests.post(
        f"{gateway_url}/books",
        json={"title": "Contract", "authors": [author]},
        headers={"Authorization": auth},
        timeout=60,
    )
    assert book.status_code == 202, book.text
    subscribed = requests.post(
        f"{gateway_url}/authors/{author}/subscribers",
        json={"email": email},
        headers={"Authorization": auth},
        timeout=60,
    )
    assert subscribed.status_code == 201, subscribed.text
    name = author if "/authors/" in path else "app.js" if "/static/" in path else "default"
    return {"book_id": book.json()["book"]["id"], "task_id": book.json()["tasks"][0], "name": name, "email": email}


_TURN = itertools.count()


@schema.parametrize()
@settings(suppress_health_check=[HealthCheck.function_scoped_fixture])  # real_ids: one set per operation, on purpose
def test_the_api_keeps_its_published_contract(
    case: Any, gateway_url: str, keys: dict[str, str], real_ids: dict[str, str]
) -> None:
    if real_ids and case.path_parameters and case.meta.generation.mode is GenerationMode.POSITIVE and next(_TURN) % 2:
        case.path_parameters = {name: real_ids.get(name, value) for name, value in case.path_parameters.items()}
        if isinstance(case.query, dict) and "wait" in case.query:  # a real task stays PENDING: wait 1 s, not 20
            case.query = {**case.query, "wait": min(int(case.query["wait"]), 1)}
    response = case.call(base_url=gateway_url, headers=_credentials(case, gateway_url, keys), timeout=60)
    STATS[str(response.status_code)] += 1
    SEEN.add(case.operation.label)
    case.validate_response(response, checks=CHECKS)
