"""The runner's per-function counters, served as JSON at `GET /stats` (the dashboard and `/queues` read them).

Shape: {"functions": {name: {"queue", "batch_size", "max_concurrency", "timeout_seconds",
"memory_mb", "invocations", "errors", "timeouts", "throttles", "cold_starts", "in_use", "p50_ms",
"p95_ms", "warm_sandboxes"}}, "updated_at"}. Durations are those of the last `WINDOW` invocations.

The counters survive a restart of the runner: `persist` keeps them (and the last PERSISTED
durations) as one control item per function in the task table, `restore` reads them back
(`control#runtime#<function>#<queue>`; the runner saves every SAVE_SECONDS and when it stops).
"""

from __future__ import annotations

import json
import statistics
import threading
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

from devtools.runtime.sandbox import Invocation

WINDOW = 1000


def percentile(samples: list[float], pct: float) -> float | None:
    """The nearest-rank percentile of `samples` (None when empty)."""
    if not samples:
        return None
    ordered = sorted(samples)
    return ordered[min(len(ordered) - 1, max(0, round(pct / 100 * (len(ordered) - 1))))]


@dataclass
class FunctionStats:
    """Counters of one function, updated by the threads that invoke it."""

    queue: str | None
    batch_size: int | None
    max_concurrency: int | None
    timeout_seconds: float
    memory_mb: int
    warm: Callable[[], int] = lambda: 0
    invocations: int = 0
    errors: int = 0
    timeouts: int = 0
    throttles: int = 0
    cold_starts: int = 0
    in_use: Callable[[], int] = lambda: 0
    durations: deque[float] = field(default_factory=lambda: deque(maxlen=WINDOW))
    _lock: threading.Lock = field(default_factory=threading.Lock)

    def record(self, invocation: Invocation) -> None:
        """Count one invocation (every failed status is an error; a timeout is also a timeout)."""
        with self._lock:
            self.invocations += 1
            self.errors += int(invocation.failed)
            self.timeouts += int(invocation.status == "timeout")
            self.cold_starts += int(invocation.init_ms is not None)
            self.durations.append(invocation.duration_ms)

    def throttled(self) -> None:
        """Count an event that found every concurrency slot busy."""
        with self._lock:
            self.throttles += 1

    def as_dict(self) -> dict[str, Any]:
        """JSON form."""
        with self._lock:
            durations = list(self.durations)
            counts = {
                "invocations": self.invocations,
                "errors": self.errors,
                "timeouts": self.timeouts,
                "throttles": self.throttles,
                "cold_starts": self.cold_starts,
            }
        p50 = statistics.median(durations) if durations else None
        return {
            "queue": self.queue,
            "batch_size": self.batch_size,
            "max_concurrency": self.max_concurrency,
            "timeout_seconds": self.timeout_seconds,
            "memory_mb": self.memory_mb,
            **counts,
            "p50_ms": round(p50, 2) if p50 is not None else None,
            "p95_ms": round(p95, 2) if (p95 := percentile(durations, 95)) is not None else None,
            "warm_sandboxes": self.warm(),
            "in_use": self.in_use(),
        }


class RuntimeStats:
    """Every function's counters."""

    def __init__(self) -> None:
        self.functions: dict[str, FunctionStats] = {}

    def add(self, name: str, stats: FunctionStats) -> FunctionStats:
        self.functions[name] = stats
        return stats

    def as_dict(self) -> dict[str, Any]:
        return {
            "functions": {name: stats.as_dict() for name, stats in self.functions.items()},
            "updated_at": datetime.now(UTC).isoformat(timespec="seconds"),
        }


PERSISTED = 200  # durations kept across a restart (for p50/p95)
SAVE_SECONDS = 10.0
_COUNTERS = ("invocations", "errors", "timeouts", "throttles", "cold_starts")


def _key(name: str, function: FunctionStats) -> dict[str, Any]:
    """One item per function and event source: a function mapped to another queue (a test's private
    queue, another stage's) is another mapping, as on Lambda, and starts from its own counters."""
    return {"id": {"S": f"control#runtime#{name}#{function.queue or 'schedule'}"}}


def persist(stats: RuntimeStats) -> None:
    """Keep every function's counters in DynamoDB (one PutItem each)."""
    from chalicelib.platform.aws import client
    from chalicelib.platform.config import get_settings

    dynamo, table = client("dynamodb"), get_settings().tasks_table
    for name, function in stats.functions.items():
        with function._lock:
            item = {**_key(name, function), **{c: {"N": str(getattr(function, c))} for c in _COUNTERS}}
            item["durations"] = {"S": json.dumps([round(d, 2) for d in list(function.durations)[-PERSISTED:]])}
        dynamo.put_item(TableName=table, Item=item)


def restore(stats: RuntimeStats) -> None:
    """Start every function's counters where the last run of the runner left them."""
    from chalicelib.platform.aws import client
    from chalicelib.platform.config import get_settings

    dynamo, table = client("dynamodb"), get_settings().tasks_table
    for name, function in stats.functions.items():
        item = dynamo.get_item(TableName=table, Key=_key(name, function), ConsistentRead=True).get("Item")
        if not item:
            continue
        with function._lock:
            for counter in _COUNTERS:
                setattr(function, counter, int(item.get(counter, {}).get("N", 0)))
            function.durations.extend(float(d) for d in json.loads(item.get("durations", {}).get("S", "[]")))


class StatsServer:
    """`GET /stats` on 127.0.0.1 (port 0: any free port)."""

    def __init__(self, stats: RuntimeStats, port: int = 0) -> None:
        outer = stats

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self) -> None:
                if self.path.split("?")[0].rstrip("/") != "/stats":
                    self.send_error(404)
                    return
                body = json.dumps(outer.as_dict()).encode()
                self.send_response(200)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def log_message(self, format: str, *args: Any) -> None:
                pass

        self._server = ThreadingHTTPServer(("127.0.0.1", port), Handler)
        self._server.daemon_threads = True
        self._thread = threading.Thread(target=self._server.serve_forever, name="runtime-stats", daemon=True)

    @property
    def url(self) -> str:
        port = self._server.server_address[1]
        return f"http://127.0.0.1:{port}/stats"

    def start(self) -> StatsServer:
        self._thread.start()
        return self

    def stop(self) -> None:
        self._server.shutdown()
        self._server.server_close()
