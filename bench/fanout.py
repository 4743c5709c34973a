"""Mail fan-out at scale: a book by an author with N confirmed subscribers, through the
default worker with a short, truthful deadline per invocation (like Lambda's timeout).

  python -m bench.fanout [--subscribers 20000] [--rate 5000] [--timeout-ms 10000] [--old 2000]
                         [--ses-latency-ms 150]

Reports time to the last mail, invocations, the longest invocation against the timeout,
AWS calls per recipient by service (and DynamoDB writes), the observed peak send rate
against the limit; and the same for the previous design (one invocation loads every
subscriber and queues one `mail.new_book` task each), run with `--old` subscribers.
The emulator's `SendBulkEmail` takes `--ses-latency-ms` (an assumed ~150 ms from Lambda,
bench/README §10), so the limit of one sender's calls in sequence shows locally.
"""

from __future__ import annotations

import argparse
import bisect
import json
import os
import threading
import time
import uuid
from collections import Counter, defaultdict
from pathlib import Path
from typing import Any

from bench.common import print_table, run_worker, save

_calls: Counter[tuple[str, str]] = Counter()
_seconds: dict[tuple[str, str], float] = defaultdict(float)  # summed latency per operation, seen by the caller
_lock = threading.Lock()
_polling = threading.local()  # the bench's own checks are not the fan-out's calls
WRITES = {"PutItem", "UpdateItem", "DeleteItem", "BatchWriteItem", "TransactWriteItems"}


def _count_calls() -> None:
    from botocore.client import BaseClient

    original = BaseClient._make_api_call

    def counted(self: BaseClient, operation: str, params: dict[str, Any]) -> Any:
        key = (self.meta.service_model.service_name, operation)
        started = time.perf_counter()
        try:
            return original(self, operation, params)
        finally:
            if not getattr(_polling, "on", False):
                with _lock:
                    _calls[key] += 1
                    _seconds[key] += time.perf_counter() - started

    BaseClient._make_api_call = counted


def _cpu_seconds(pid: int | str = "self") -> float:
    """User + system CPU seconds of a process so far (Linux /proc; 0 elsewhere)."""
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except OSError:
        return 0.0
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def _children() -> list[int]:
    """This process's child processes (the emulator), from /proc."""
    found: list[int] = []
    for task in Path("/proc/self/task").glob("*/children"):
        found += [int(pid) for pid in task.read_text().split()]
    return found


def _old_design(book_id: str) -> None:
    """The fan-out before paging (kept here to measure it): every subscriber in one invocation."""
    from chalicelib import app_tasks
    from chalicelib.books.models import Book
    from chalicelib.platform.authors import author_key
    from chalicelib.subscriptions.models import Subscriber
    from chalicelib.tasks.dispatch import dispatch

    book = Book.get(book_id)
    found = {s.email: author_key(a) for a in map(str, book.authors) for s in Subscriber.query(author_key(a))}
    ns = uuid.UUID("6f1d2a52-8a83-4c1c-9d53-1b8f0f2f5a10")
    dispatch(
        [
            app_tasks.send_new_book_email.s(book_id, e, k, task_id=str(uuid.uuid5(ns, f"{book_id}:{e}")))
            for e, k in sorted(found.items())
        ],
        book.owner,
    )


def worker(
    design: str, subscribers: int, rate: float, timeout_ms: int, threads: int, ses_latency_ms: float
) -> dict[str, Any]:
    """In a fresh interpreter: seed, fan out, consume with a deadline, count."""
    from bench.common import emulator

    env = {
        "SES_MAX_SEND_RATE": str(rate),
        "FANOUT_SAFETY_MS": str(max(1000, timeout_ms // 4)),
        "EMULATOR_SES_LATENCY_MS": str(ses_latency_ms),  # read by devtools/emulator/ses_v2.py in the emulator
    }
    with emulator(env) as endpoint:
        import requests

        import app
        from chalicelib.books.schemas import BookCreate
        from chalicelib.books.service import create_book
        from chalicelib.mail.fanout import progress
        from chalicelib.ops.queues import depth
        from chalicelib.platform.config import get_settings
        from devtools.fanout_driver import Driver
        from devtools.seed import seed_subscribers

        settings = get_settings()
        author = f"Bench Author {uuid.uuid4().hex[:6]}"
        seed_subscribers(author, "bench", confirmed=subscribers)
        _count_calls()
        if design == "old":  # the book alone: the old fan-out below is the only one
            from chalicelib.books.models import Book

            saved = Book(str(uuid.uuid4()), owner="bench", title="Bench", authors=[author])
            saved.save()
            book_id = saved.id
        else:
            book_id = create_book("bench", BookCreate(title="Bench", authors=[author]))["book"]["id"]
        _calls.clear()
        _seconds.clear()
        name = settings.default.name
        emulators = _children()
        cpu0 = {pid: _cpu_seconds(pid) for pid in emulators}
        own0 = _cpu_seconds()
        polling = [0.0]
        started = time.perf_counter()
        old_ms = 0.0
        if design == "old":
            t0 = time.perf_counter()
            _old_design(book_id)
            old_ms = (time.perf_counter() - t0) * 1000

        def mails() -> list[dict[str, Any]]:
            found: list[dict[str, Any]] = requests.get(f"{endpoint}/_aws/ses", timeout=120).json()["messages"]
            return found

        def done() -> bool:
            """Every mail recorded and the queue empty; the mailbox (every raw message) is read once, at the end."""
            t0, _polling.on = time.perf_counter(), True
            try:
                if design != "old":
                    state = progress(book_id)
                    if not (state and state["complete"] and state["pending"] == 0):
                        return False
                d = depth(name)
                return d.visible + d.in_flight + d.delayed == 0 and (design != "old" or len(mails()) >= subscribers)
            finally:
                polling[0] += time.perf_counter() - t0
                _polling.on = False

        stats = Driver(app, settings, timeout_ms, threads=threads).run_until(done, limit_s=3600)
        elapsed = time.perf_counter() - started
        emulator_cpu = sum(_cpu_seconds(pid) - cpu0[pid] for pid in emulators)
        own_cpu = _cpu_seconds() - own0
        durations = [old_ms] if old_ms else []
        sent = mails()
        per_address = Counter(to for m in sent for to in set(m["Destination"]["ToAddresses"]))
        stamps = sorted(m["Timestamp"] for m in sent if "Timestamp" in m)
        peak = max((bisect.bisect_left(stamps, t + 1.0) - i for i, t in enumerate(stamps)), default=0)
        by_service: Counter[str] = Counter()
        writes = 0
        for (service, operation), n in _calls.items():
            by_service[service] += n
            writes += n if service == "dynamodb" and operation in WRITES else 0
        return {
            "design": design,
            "subscribers": subscribers,
            "rate_limit": rate,
            "ses_latency_ms": ses_latency_ms,
            "timeout_ms": timeout_ms,
            "seconds_to_last_mail": elapsed,
            "mails": len(sent),
            "addresses_mailed_once": sum(1 for n in per_address.values() if n == 1),
            "addresses_mailed_twice_or_more": sum(1 for n in per_address.values() if n > 1),
            "invocations": stats.invocations + len(durations),
            "longest_invocation_ms": max([stats.longest_ms, *durations]),
            "over_timeout": stats.over_timeout + sum(1 for d in durations if d >= timeout_ms),
            "calls_per_recipient": {s: n / subscribers for s, n in sorted(by_service.items())},
            "dynamodb_writes_per_recipient": writes / subscribers,
            "calls": {f"{s}:{o}": n for (s, o), n in sorted(_calls.items())},
            "peak_mails_per_second": peak,
            "profile": {
                "emulator_cpu_s": emulator_cpu,
                "worker_cpu_s": own_cpu,
                "polling_s": polling[0],
                "call_seconds": {
                    f"{s}:{o}": round(t, 2) for (s, o), t in sorted(_seconds.items(), key=lambda kv: -kv[1])
                },
            },
        }


def main(argv: list[str] | None = None) -> dict[str, Any]:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--subscribers", type=int, default=20_000)
    parser.add_argument("--rate", type=float, default=5000.0, help="SES_MAX_SEND_RATE (mails/s) for the run")
    parser.add_argument("--timeout-ms", type=int, default=10_000)
    parser.add_argument("--threads", type=int, default=4, help="default-queue consumers (Lambda concurrency)")
    parser.add_argument("--old", type=int, default=2000, help="subscribers for the previous design (0: skip)")
    parser.add_argument("--ses-latency-ms", type=float, default=150.0, help="delay of each emulated SendBulkEmail")
    parser.add_argument("--worker", help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.worker:
        print(
            json.dumps(
                worker(args.worker, args.subscribers, args.rate, args.timeout_ms, args.threads, args.ses_latency_ms)
            )
        )
        return {}
    runs = [("paged", args.subscribers)] + ([("old", args.old)] if args.old else [])
    results = [
        run_worker(
            "bench.fanout",
            design,
            "--subscribers",
            str(n),
            "--rate",
            str(args.rate),
            "--timeout-ms",
            str(args.timeout_ms if design == "paged" else 900_000),
            "--threads",
            str(args.threads),
            "--ses-latency-ms",
            str(args.ses_latency_ms),
        )
        for design, n in runs
    ]
    rows = [
        [
            r["design"],
            r["subscribers"],
            r["seconds_to_last_mail"],
            r["invocations"],
            f"{r['longest_invocation_ms'] / 1000:.1f} s / {r['timeout_ms'] / 1000:.0f} s",
            r["addresses_mailed_twice_or_more"],
            r["calls_per_recipient"].get("sesv2", 0.0) + r["calls_per_recipient"].get("ses", 0.0),
            r["dynamodb_writes_per_recipient"],
            r["calls_per_recipient"].get("dynamodb", 0.0),
            r["calls_per_recipient"].get("sqs", 0.0),
            f"{r['peak_mails_per_second']} / {r['rate_limit']:.0f}",
        ]
        for r in results
    ]
    print_table(
        f"Mail fan-out to confirmed subscribers (default worker, emulator, SendBulkEmail {args.ses_latency_ms:.0f} ms)",
        [
            "design",
            "subscribers",
            "s to last mail",
            "invocations",
            "longest / timeout",
            "mailed twice",
            "SES calls/recipient",
            "DDB writes/recipient",
            "DDB calls/recipient",
            "SQS calls/recipient",
            "peak mails/s / limit",
        ],
        rows,
    )
    data = {"results": results}
    save("fanout", data)
    return data


if __name__ == "__main__":
    main()
