"""The local runtime: a sandbox's cold start, the cost of a warm sandbox invocation over an
in-process call, and the emulator's restart time with N books in its saved state.

  python -m bench.runtime [--invocations 50] [--books 1000]
"""

from __future__ import annotations

import argparse
import json
import os
import signal
import tempfile
import time
from pathlib import Path
from typing import Any

import requests

from bench.common import apply_env, emulator, print_table, run_worker, save, summary


def _noop_batches(count: int) -> list[dict[str, Any]]:
    """`count` one-record SQS events as Lambda sends them, each a real `bench.noop` task message.

    Lambda never sends an empty batch (Powertools rejects one), so each invocation gets a real
    record of the cheapest task there is: the measure is the task machinery's own cost.
    """
    from bench.tasks import noop
    from chalicelib.platform.aws import client
    from chalicelib.platform.config import get_settings
    from chalicelib.platform.sqs import queue_arn, queue_url
    from chalicelib.tasks.dispatch import dispatch
    from devtools.runner import lambda_record

    queue = get_settings().default.name
    for start in range(0, count, 100):
        dispatch([noop.s(i) for i in range(start, min(count, start + 100))])
    events: list[dict[str, Any]] = []
    while len(events) < count:
        messages = client("sqs").receive_message(
            QueueUrl=queue_url(queue),
            MaxNumberOfMessages=10,
            WaitTimeSeconds=1,
            VisibilityTimeout=3600,
            AttributeNames=["All"],
            MessageAttributeNames=["All"],
        )["Messages"]
        events += [{"Records": [lambda_record(m, queue_arn(queue), "us-east-1")]} for m in messages]
    return events[:count]


def _succeeded(invocation: Any) -> bool:
    return bool(invocation.status == "ok" and not (invocation.result or {}).get("batchItemFailures"))


def invocation_costs(invocations: int, cold_starts: int) -> dict[str, Any]:
    """Cold starts of `default_worker` sandboxes, then warm sandbox vs in-process invocations, one task each."""
    with emulator():
        from bench.runtime_app import default_worker
        from devtools.runner import InProcessFunction
        from devtools.sandbox import FunctionSpec, Sandbox

        events = iter(_noop_batches(cold_starts + 2 * invocations + 3))
        spec = FunctionSpec("default_worker", "bench.runtime_app", "default_worker", 30.0, 512)
        colds: list[float] = []
        for _ in range(cold_starts):
            sandbox = Sandbox(spec)
            started = time.perf_counter()
            first = sandbox.invoke(next(events))
            colds.append((time.perf_counter() - started) * 1000)
            assert _succeeded(first), first
            sandbox.stop()
        sandbox = Sandbox(spec)
        sandbox.invoke(next(events))
        warm: list[float] = []
        for _ in range(invocations):
            started = time.perf_counter()
            invocation = sandbox.invoke(next(events))
            warm.append((time.perf_counter() - started) * 1000)
            assert _succeeded(invocation), invocation
        memory = sandbox.invoke(next(events)).max_memory_mb
        sandbox.stop()
        in_process = InProcessFunction(spec, default_worker)
        in_process.invoke(next(events))
        threads: list[float] = []
        for _ in range(invocations):
            started = time.perf_counter()
            invocation = in_process.invoke(next(events))
            threads.append((time.perf_counter() - started) * 1000)
            assert _succeeded(invocation), invocation
    return {
        "cold_start_ms": summary(colds),
        "warm_sandbox_ms": summary(warm),
        "in_process_ms": summary(threads),
        "sandbox_max_memory_mb": memory,
    }


def _count_books() -> int:
    from chalicelib.platform.aws import client
    from chalicelib.platform.config import get_settings

    ddb, total, kwargs = client("dynamodb"), 0, {"TableName": get_settings().books_table, "Select": "COUNT"}
    while True:
        page = ddb.scan(**kwargs)
        total += int(page["Count"])
        if "LastEvaluatedKey" not in page:
            return total
        kwargs["ExclusiveStartKey"] = page["LastEvaluatedKey"]


def _start(port: int, state: Path, log: Any) -> tuple[Any, str, float]:
    from devtools.emulator import start_process

    started = time.perf_counter()
    proc, endpoint = start_process(port, log=log, state=state)
    return proc, endpoint, time.perf_counter() - started


def restart(books: int) -> dict[str, Any]:
    """Fill a persistent emulator with `books` books (each with a 30 KB cover and a 3 KB thumbnail), restart it."""
    apply_env()
    import chalicelib.app_tasks  # noqa: F401  (registers the tasks create_book sends, as app.py does)
    from chalicelib.books.schemas import BookCreate
    from chalicelib.books.service import create_book

    state = Path(tempfile.mkdtemp(prefix="bench-state-")) / "emulator-state.pickle"
    log = tempfile.NamedTemporaryFile(prefix="bench-emulator-", suffix=".log", delete=False)
    from devtools.emulator import free_port

    port = free_port()  # the same port after the restart: the clients keep their endpoint
    proc, endpoint, empty_start = _start(port, state, log)
    os.environ["AWS_ENDPOINT_URL"] = endpoint
    try:
        from chalicelib.platform.aws import client
        from chalicelib.platform.config import get_settings
        from infra.local import create_all

        create_all()
        s3, bucket = client("s3"), get_settings().media_bucket
        for i in range(books):
            book = create_book("bench", BookCreate(title=f"Book {i}", authors=[f"Author {i % 50}"]))["book"]
            s3.put_object(Bucket=bucket, Key=f"covers/{book['id']}/original", Body=os.urandom(30_000))
            s3.put_object(Bucket=bucket, Key=f"covers/{book['id']}/thumb", Body=os.urandom(3_000))
        started = time.perf_counter()
        size = requests.post(f"{endpoint}/_emulator/snapshot", timeout=120).json()["bytes"]
        snapshot_seconds = time.perf_counter() - started
        started = time.perf_counter()
        proc.send_signal(signal.SIGTERM)
        proc.wait(timeout=120)
        stop_seconds = time.perf_counter() - started
        proc, endpoint, restart_seconds = _start(port, state, log)
        restored = _count_books()
    finally:
        proc.send_signal(signal.SIGTERM)
        proc.wait(timeout=120)
    return {
        "books": books,
        "books_after_restart": restored,
        "snapshot_mb": size / 1e6,
        "snapshot_seconds": snapshot_seconds,
        "stop_seconds": stop_seconds,
        "start_empty_seconds": empty_start,
        "start_with_state_seconds": restart_seconds,
    }


def main(argv: list[str] | None = None) -> dict[str, Any]:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--invocations", type=int, default=50)
    parser.add_argument("--cold-starts", type=int, default=3)
    parser.add_argument("--books", type=int, default=1000)
    parser.add_argument("--worker", choices=["costs", "restart"], help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.worker:  # each part in a fresh interpreter: clients and models bind to one emulator at import
        part = invocation_costs(args.invocations, args.cold_starts) if args.worker == "costs" else restart(args.books)
        print(json.dumps(part))
        return {}
    common = [
        "--invocations",
        str(args.invocations),
        "--cold-starts",
        str(args.cold_starts),
        "--books",
        str(args.books),
    ]
    costs = run_worker("bench.runtime", "costs", *common)
    rows = [
        [name, costs[key]["n"], costs[key]["p50"], costs[key]["p95"]]
        for name, key in (
            ("sandbox cold start (init + first invocation)", "cold_start_ms"),
            ("warm sandbox invocation", "warm_sandbox_ms"),
            ("in-process invocation (thread)", "in_process_ms"),
        )
    ]
    print_table("default_worker, one `bench.noop` task a batch (ms)", ["invocation", "n", "p50", "p95"], rows)
    overhead = costs["warm_sandbox_ms"]["p50"] - costs["in_process_ms"]["p50"]
    print(f"\nwarm sandbox overhead over an in-process call: {overhead:.2f} ms (p50); "
          f"sandbox peak RSS {costs['sandbox_max_memory_mb']} MB")  # fmt: skip
    state = run_worker("bench.runtime", "restart", *common)
    print_table(
        f"emulator restart with {state['books']} books (1 item + 2 S3 objects each)",
        ["snapshot MB", "snapshot s", "stop s", "start empty s", "start with state s", "books after restart"],
        [
            [
                state["snapshot_mb"],
                state["snapshot_seconds"],
                state["stop_seconds"],
                state["start_empty_seconds"],
                state["start_with_state_seconds"],
                state["books_after_restart"],
            ]
        ],
    )
    data = {"invocations": costs, "warm_overhead_ms": overhead, "restart": state}
    save("runtime", data)
    return data


if __name__ == "__main__":
    main()
