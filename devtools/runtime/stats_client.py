"""The runner's `/stats` read over HTTP: the local runtime the API process registers under `make run`.

The deployed code only declares what it needs (`chalicelib.ops.local_runtime.LocalRuntime`); this is its
one implementation, and it lives here so that nothing of it ships in the Lambda zip. The standard
library's urllib is enough for one GET on the loopback.
"""

from __future__ import annotations

import json
import urllib.error
import urllib.request

from chalicelib.ops.local_runtime import RuntimeCounters, RuntimeUnavailable

MAX_BYTES = 256 * 1024  # a few functions' counters take a few kB; never read a runaway answer whole


class RunnerStats:
    """The counters the runner serves at `url` (devtools/runtime/stats.py's StatsServer)."""

    def __init__(self, url: str) -> None:
        self.url = url

    def counters(self, timeout_seconds: float) -> RuntimeCounters:
        """The counters now; RuntimeUnavailable when the runner does not answer or answers something else."""
        try:
            with urllib.request.urlopen(self.url, timeout=timeout_seconds) as answer:
                data = json.loads(answer.read(MAX_BYTES))
        except (urllib.error.URLError, OSError, ValueError) as exc:
            raise RuntimeUnavailable(f"the local runtime does not answer: {exc}") from exc
        functions = data.get("functions") if isinstance(data, dict) else None
        if not isinstance(functions, dict):
            raise RuntimeUnavailable("the local runtime answered something else than its counters")
        updated_at = data.get("updated_at")
        return {
            "functions": {str(name): stats for name, stats in functions.items() if isinstance(stats, dict)},
            "updated_at": str(updated_at) if updated_at is not None else None,
        }
