"""Consumer throughput: messages per second through the local event-source runner (the
same handler, records and deletes as in Lambda) for a no-op task at batch sizes 1 and 10.

  python -m bench.runner_throughput [--messages 400]
"""

from __future__ import annotations

import argparse
import json
import time
from typing import Any

from bench.common import print_table, run_worker, save


def worker(batch: int, messages: int) -> dict[str, Any]:
    """In a fresh process (the batch size is read at import): fill, drain, time."""
    from bench.common import emulator

    with emulator({"DEFAULT_BATCH_SIZE": str(batch)}):
        import app
        from bench.tasks import noop
        from chalicelib.ops.queues import depth
        from chalicelib.platform.config import get_settings
        from chalicelib.tasks.dispatch import dispatch
        from devtools.runtime.runner import EventSourceRunner

        queue = get_settings().default.name
        for start in range(0, messages, 100):
            dispatch([noop.s(i) for i in range(start, min(messages, start + 100))])
        runner = EventSourceRunner(app, wait_seconds=1, only={"default_worker"})
        started = time.perf_counter()
        runner.start()
        while (d := depth(queue)).visible + d.in_flight > 0:
            time.sleep(0.05)
        elapsed = time.perf_counter() - started
        poller = runner.pollers["default_worker"]
        runner.stop()
        return {
            "batch": batch,
            "messages": messages,
            "seconds": elapsed,
            "per_second": messages / elapsed,
            "invocations": poller.stats.invocations,
            "concurrency": poller.concurrency,
        }


def main(argv: list[str] | None = None) -> dict[str, Any]:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--messages", type=int, default=400)
    parser.add_argument("--runs", type=int, default=1)
    parser.add_argument("--worker", type=int, help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.worker:
        print(json.dumps(worker(args.worker, args.messages)))
        return {}
    results: dict[int, list[dict[str, Any]]] = {1: [], 10: []}
    for _ in range(args.runs):
        for batch in results:
            results[batch].append(run_worker("bench.runner_throughput", str(batch), "--messages", str(args.messages)))
    base = sorted(r["per_second"] for r in results[1])[len(results[1]) // 2]
    rows = []
    for batch, runs in results.items():
        median = sorted(runs, key=lambda r: r["per_second"])[len(runs) // 2]
        rows.append(
            [
                batch,
                median["concurrency"],
                median["messages"],
                median["invocations"],
                median["per_second"],
                median["per_second"] / base,
            ]
        )
    print_table(
        "No-op tasks through the local runner (default queue, emulator)",
        ["batch size", "max concurrency", "messages", "invocations", "messages/s", "vs batch 1"],
        rows,
    )
    data = {"results": results}
    save("runner_throughput", data)
    return data


if __name__ == "__main__":
    main()
