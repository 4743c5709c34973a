"""The seam between the deployed code and a local runtime (issue 25: nothing local ships in the zip).

chalicelib declares what it needs (`LocalRuntime.counters`); `make run`'s API process registers
the runner's `/stats` at start. Here an in-memory runtime stands in for the runner: the HTTP side
is tested by tests/tooling/test_runtime.py and tests/functional/test_dashboard_api.py.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest

from chalicelib.dashboard import workers
from chalicelib.ops import local_runtime
from chalicelib.ops.local_runtime import RuntimeCounters, RuntimeUnavailable

pytestmark = pytest.mark.unit

MEDIA = {
    "queue": "bookshelf-local-media",
    "batch_size": 1,
    "max_concurrency": 2,
    "timeout_seconds": 300,
    "memory_mb": 1536,
    "invocations": 3,
    "errors": 1,
    "timeouts": 0,
    "throttles": 2,
    "cold_starts": 1,
    "in_use": 1,
    "p50_ms": 120.0,
    "p95_ms": 900.0,
    "warm_sandboxes": 1,
}


class InMemoryRuntime:
    """Answers the counters it holds, or says it is down."""

    def __init__(self, counters: RuntimeCounters | None) -> None:
        self.answer = counters
        self.asked: list[float] = []

    def counters(self, timeout_seconds: float) -> RuntimeCounters:
        self.asked.append(timeout_seconds)
        if self.answer is None:
            raise RuntimeUnavailable("the local runtime does not answer: connection refused")
        return self.answer


@pytest.fixture(autouse=True)
def nothing_registered() -> Iterator[None]:
    before = local_runtime.use(None)
    yield
    local_runtime.use(before)


def _counters() -> RuntimeCounters:
    functions: dict[str, dict[str, Any]] = {
        "media_worker": MEDIA,
        "reconcile": {**MEDIA, "queue": None},  # a scheduled function consumes no queue
    }
    return {"functions": functions, "updated_at": "2026-12-07T08:00:00Z"}


def test_without_a_registered_runtime_the_listing_has_no_runtime_entry_and_the_panel_says_why() -> None:
    assert local_runtime.registered() is None
    assert local_runtime.by_queue() is None
    assert local_runtime.runtime_of("bookshelf-local-media", None) == {}
    assert workers.runtime_stats() == {"available": False, "reason": workers.NO_RUNTIME}


def test_a_registered_runtime_gives_each_queue_its_consumers_counters() -> None:
    runtime = InMemoryRuntime(_counters())
    assert local_runtime.use(runtime) is None
    assert local_runtime.registered() is runtime
    by_queue = local_runtime.by_queue()
    assert by_queue == {"bookshelf-local-media": {"function": "media_worker", **MEDIA}}
    assert local_runtime.runtime_of("bookshelf-local-media", by_queue)["runtime"]["memory_mb"] == 1536
    assert local_runtime.runtime_of("bookshelf-local-default", by_queue) == {"runtime": None}
    assert runtime.asked == [local_runtime.QUEUES_TIMEOUT_SECONDS]


def test_the_panel_shows_the_registered_runtimes_fields_and_nothing_else() -> None:
    counters = _counters()
    counters["functions"]["media_worker"] = {**MEDIA, "internal": "not a panel field"}
    del counters["functions"]["reconcile"]["warm_sandboxes"]
    local_runtime.use(InMemoryRuntime(counters))
    answer = workers.runtime_stats()
    assert answer["available"] is True and answer["source"] == "runtime"
    assert answer["updated_at"] == "2026-12-07T08:00:00Z"
    assert answer["functions"]["media_worker"] == MEDIA
    assert answer["functions"]["reconcile"]["warm_sandboxes"] is None  # every field, None when not given
    assert set(answer["functions"]["reconcile"]) == set(workers.FIELDS)


def test_a_runtime_that_does_not_answer_leaves_the_listing_whole_and_the_panel_says_why() -> None:
    local_runtime.use(InMemoryRuntime(None))
    assert local_runtime.by_queue() == {}
    assert local_runtime.runtime_of("bookshelf-local-media", {}) == {"runtime": None}
    answer = workers.runtime_stats()
    assert answer["available"] is False and "does not answer" in answer["reason"]


def test_make_runs_api_process_registers_the_runner_before_serving(monkeypatch: pytest.MonkeyPatch) -> None:
    from devtools import local_api
    from devtools.gateway import server
    from devtools.local import api_command
    from devtools.runtime.stats_client import RunnerStats

    url = "http://127.0.0.1:9/stats"
    command = api_command("local", 8000, url)
    assert command[1:3] == ["-m", "devtools.local_api"] and command[-2:] == ["--runner-stats", url]
    assert "--runner-stats" not in api_command("local", 8000)  # started without a runner: none registered
    served: list[tuple[list[str], object]] = []
    monkeypatch.setattr(server, "main", lambda argv: served.append((argv, local_runtime.registered())))
    local_api.main(command[3:])
    ((gateway_args, runtime),) = served
    assert gateway_args == ["--stage", "local", "--host", "127.0.0.1", "--port", "8000"]
    assert isinstance(runtime, RunnerStats) and runtime.url == url
