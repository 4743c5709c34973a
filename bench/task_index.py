"""What one page of the task list and search costs at 10,000, 100,000 (and 1,000,000) records.

  python -m bench.task_index [--records 10000,100000] [--repeat 3] [--seed direct|http]

One table grows through the sizes (records spread over the last 7 days, mixed statuses and
names, a pool of books); after each size every page is asked for `--repeat` times. Per page:
the DynamoDB calls, the items they read (ScannedCount of each Query, the keys of each
BatchGetItem), the read units DynamoDB would charge (eventually consistent: 0.5 RCU per 4 KB
of a Query's items together, per 4 KB of each item of a BatchGetItem; sizes by DynamoDB's
rules from the items the emulator returns) and the wall times: the calls' (the emulator's,
over HTTP) and the page's. DynamoDB's cost is what must not grow with N; the emulator's wall
time does (see bench/README.md: moto sorts the whole table for every index Query).

Seeding: `direct` (default) writes the items into the emulator's moto backend, which runs in
this process (a WSGI server in a thread, as `devtools.emulator` serves it); `http` sends
BatchWriteItem of 25 from 8 threads, as a client would. The run prints both rates it used.
"""

from __future__ import annotations

import argparse
import json
import math
import random
import statistics
import threading
import time
import uuid
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from datetime import UTC, datetime, timedelta
from typing import Any

from bench.common import apply_env, peak_rss_mb, print_table, save

DAYS = 7
BOOKS = 1000
STATUSES = [("SUCCESS", 0.90), ("FAILURE", 0.04), ("RETRY", 0.02), ("STARTED", 0.02), ("PENDING", 0.02)]
NEEDLE = "needle-that-no-record-holds"

_stats = threading.local()


# ---------------------------------------------------------------- what a page costs


def _value_size(value: dict[str, Any]) -> int:
    """Bytes of one attribute value by DynamoDB's item-size rules."""
    ((kind, inner),) = value.items()
    if kind == "S":
        return len(str(inner).encode())
    if kind == "N":
        digits = len(str(inner).lstrip("-").replace(".", "").lstrip("0")) or 1
        return 1 + math.ceil(digits / 2)
    if kind == "B":
        return len(inner)
    if kind in ("BOOL", "NULL"):
        return 1
    if kind == "L":
        return 3 + sum(1 + _value_size(v) for v in inner)
    if kind == "M":
        return 3 + sum(1 + len(k.encode()) + _value_size(v) for k, v in inner.items())
    return sum(len(str(v)) for v in inner)  # SS, NS, BS


def item_size(item: dict[str, Any]) -> int:
    return sum(len(name.encode()) + _value_size(value) for name, value in item.items())


def _units(size: int) -> float:
    return 0.5 * max(1, math.ceil(size / 4096))


@contextmanager
def counted() -> Iterator[dict[str, float]]:
    """Count the DynamoDB calls made on this thread while the block runs (they still go out)."""
    totals = {"calls": 0, "items": 0, "rcu": 0.0, "call_ms": 0.0}
    _stats.totals = totals
    try:
        yield totals
    finally:
        _stats.totals = None


def _install_counter() -> None:
    from botocore.client import BaseClient

    original = BaseClient._make_api_call

    def observed(self: BaseClient, operation: str, params: dict[str, Any]) -> Any:
        totals = getattr(_stats, "totals", None)
        if totals is None or self.meta.service_model.service_name != "dynamodb":
            return original(self, operation, params)
        started = time.perf_counter()
        answer = original(self, operation, params)
        totals["call_ms"] += (time.perf_counter() - started) * 1000
        totals["calls"] += 1
        if operation == "Query":
            totals["items"] += int(answer.get("ScannedCount", answer.get("Count", 0)))
            totals["rcu"] += _units(sum(item_size(i) for i in answer.get("Items", [])))
        elif operation == "BatchGetItem":
            for rows in answer.get("Responses", {}).values():
                totals["items"] += len(rows)
                totals["rcu"] += sum(_units(item_size(i)) for i in rows)  # a projection is charged whole
        elif operation == "GetItem":
            totals["items"] += 1 if answer.get("Item") else 0
            totals["rcu"] += _units(item_size(answer.get("Item") or {}))
        return answer

    BaseClient._make_api_call = observed


# ---------------------------------------------------------------- the emulator, in this process


def _serve_in_thread() -> str:
    """The embedded emulator's WSGI app on a free port, in a daemon thread; its endpoint."""
    from moto.moto_server.werkzeug_app import MotoRequestHandler
    from werkzeug.serving import make_server

    from devtools.emulator import free_port, make_app, wait_until_up

    port = free_port()
    server = make_server("127.0.0.1", port, make_app(), threaded=True, request_handler=MotoRequestHandler)
    threading.Thread(target=server.serve_forever, daemon=True, name="emulator").start()
    endpoint = f"http://127.0.0.1:{port}"
    wait_until_up(endpoint)
    return endpoint


def _moto_table(name: str) -> Any:
    from moto.dynamodb.models import dynamodb_backends

    for account in dynamodb_backends.values():
        for backend in account.values():
            if name in backend.tables:
                return backend.tables[name]
    raise LookupError(name)


# ---------------------------------------------------------------- the records


def _records(count: int, start: int, now: datetime, names: list[str], books: list[str]) -> Iterator[dict[str, Any]]:
    """`count` task records in DynamoDB JSON, created over the last DAYS days.

    Written out by hand in PynamoDB's format (`TaskRecord.serialize()`, checked against it on
    the first record): building a PynamoDB model per record costs more than the write itself.
    """
    from chalicelib.tasks.models import TaskRecord
    from chalicelib.tasks.records import bucket_of

    rng = random.Random(start)
    statuses, weights = zip(*STATUSES, strict=True)

    def stamp(moment: datetime) -> dict[str, str]:
        return {"S": moment.strftime("%Y-%m-%dT%H:%M:%S.%f+0000")}

    for i in range(start, start + count):
        task_id = str(uuid.UUID(int=rng.getrandbits(128), version=4))
        created = now - timedelta(seconds=rng.uniform(0, DAYS * 86400))
        status = rng.choices(statuses, weights)[0]
        book = books[i % len(books)]
        item = {
            "id": {"S": task_id},
            "name": {"S": names[i % len(names)]},
            "queue": {"S": "default"},
            "status": {"S": status},
            "owner": {"S": f"user{i % 50}"},
            "book_id": {"S": book},
            "args": {"S": json.dumps([book, f"reader{i}@example.org"])},
            "kwargs": {"S": "{}"},
            "attempts": {"N": "1"},
            "created_at": stamp(created),
            "started_at": stamp(created + timedelta(milliseconds=40)),
            "finished_at": stamp(created + timedelta(milliseconds=180)),
            "updated_at": stamp(created + timedelta(milliseconds=180)),
            "expires_at": {"N": str(int((created + timedelta(days=14)).timestamp()))},
            "created_bucket": {"S": bucket_of(task_id, created)},
        }
        if status == "SUCCESS":
            item["result"] = {"S": json.dumps({"sent": 1})}
        if status == "FAILURE":
            item["error"] = {"S": "SESError: throttled"}
        if i == start:
            assert item == TaskRecord.from_raw_data(item).serialize(), "the hand-written format drifted"
        yield item


def seed_direct(table_name: str, items: Iterator[dict[str, Any]]) -> int:
    """Put moto `Item`s straight into the table's dict (a table without a sort key, as the task
    table). moto's own `put_item` re-sums the item's size at every attribute it sets (its
    400 KB check), ~5 ms an item here; these items are ~1 KB, so it is skipped."""
    from moto.dynamodb.models.dynamo_type import DynamoType, Item, LimitedSizeDict

    table = _moto_table(table_name)
    key = table.hash_key_attr
    written = 0
    for attrs in items:
        item: Any = Item.__new__(Item)
        item.hash_key, item.range_key = DynamoType(attrs[key]), None
        # Built from a dict, LimitedSizeDict uses dict.update: no size check per attribute.
        item.attrs = LimitedSizeDict({name: DynamoType(value) for name, value in attrs.items()})
        table.items[item.hash_key] = item
        written += 1
    return written


def seed_http(table_name: str, items: Iterator[dict[str, Any]]) -> int:
    from chalicelib.platform.aws import client

    dynamodb = client("dynamodb")
    batches: list[list[dict[str, Any]]] = []
    batch: list[dict[str, Any]] = []
    for item in items:
        batch.append({"PutRequest": {"Item": item}})
        if len(batch) == 25:
            batches.append(batch)
            batch = []
    if batch:
        batches.append(batch)

    def write(rows: list[dict[str, Any]]) -> int:
        request = {table_name: rows}
        while request:
            request = dynamodb.batch_write_item(RequestItems=request).get("UnprocessedItems") or {}
        return len(rows)

    with ThreadPoolExecutor(max_workers=8) as pool:
        return sum(pool.map(write, batches))


# ---------------------------------------------------------------- the pages


def _pages(book: str) -> list[tuple[str, Callable[[], Any]]]:
    from chalicelib.dashboard.task_list import list_tasks
    from chalicelib.ops.task_query import list_records
    from chalicelib.platform.schemas import Page

    def next_live() -> Any:
        first = list_tasks({"limit": "25"})
        with counted() as totals:  # only the second page is counted
            started = time.perf_counter()
            list_tasks({"limit": "25", "cursor": first["next_cursor"]})
            totals["wall_ms"] = (time.perf_counter() - started) * 1000
        return totals

    return [
        ("live list, page 1 (day index, 4 shards)", lambda: list_tasks({"limit": "25"})),
        ("live list, page 2 (cursor)", next_live),
        ("status FAILURE (status index)", lambda: list_tasks({"status": "FAILURE", "limit": "25"})),
        ("exact name (name index)", lambda: list_tasks({"name": "books.notify_subscribers", "limit": "25"})),
        ("one book (book index)", lambda: list_tasks({"book": book, "limit": "25"})),
        ("text search, no match (bounded walk)", lambda: list_tasks({"q": NEEDLE, "limit": "25"})),
        ("API GET /tasks (day index)", lambda: list_records(None, None, Page(limit=25))),
        ("API GET /tasks?status=SUCCESS", lambda: list_records("SUCCESS", None, Page(limit=25))),
    ]


def measure(book: str, repeat: int) -> list[dict[str, Any]]:
    rows = []
    for label, ask in _pages(book):
        samples = []
        for _ in range(repeat):
            with counted() as totals:
                started = time.perf_counter()
                inner = ask()
                totals["wall_ms"] = (time.perf_counter() - started) * 1000
            samples.append(inner if isinstance(inner, dict) and "calls" in inner else totals)
        last = samples[-1]
        rows.append(
            {
                "page": label,
                "calls": last["calls"],
                "items_read": last["items"],
                "rcu": last["rcu"],
                "call_ms_p50": statistics.median(s["call_ms"] for s in samples),
                "wall_ms_p50": statistics.median(s["wall_ms"] for s in samples),
            }
        )
    return rows


def main(argv: list[str] | None = None) -> dict[str, Any]:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--records", default="10000,100000", help="comma-separated table sizes, ascending")
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--seed", choices=("direct", "http"), default="direct")
    args = parser.parse_args(argv)
    sizes = sorted(int(n) for n in args.records.split(","))
    apply_env()
    import os

    os.environ["AWS_ENDPOINT_URL"] = _serve_in_thread()
    from infra.local import create_all

    create_all()
    import app  # noqa: F401 - registers the tasks (the dashboard answers an exact name from its index)
    from chalicelib.books.models import Book
    from chalicelib.platform.config import get_settings
    from chalicelib.tasks.registry import registered_tasks

    settings = get_settings()
    names = sorted(registered_tasks())
    books = [str(uuid.uuid4()) for _ in range(BOOKS)]
    with Book.batch_write() as batch:
        for i, book_id in enumerate(books):
            batch.save(Book(book_id, owner="bench", title=f"Book {i}", authors=["Bench"]))
    _install_counter()
    now = datetime.now(UTC)
    seeded, results, seeding = 0, {}, []
    seed = seed_direct if args.seed == "direct" else seed_http
    for size in sizes:
        started = time.perf_counter()
        seed(settings.tasks_table, _records(size - seeded, seeded, now, names, books))
        seconds = time.perf_counter() - started
        seeding.append({"from": seeded, "to": size, "seconds": seconds, "per_second": (size - seeded) / seconds})
        seeded = size
        rows = measure(books[0], args.repeat)
        results[size] = rows
        print_table(
            f"One page at {size:,} task records ({args.seed} seeding: {seeding[-1]['per_second']:,.0f} records/s; "
            f"peak RSS {peak_rss_mb():,.0f} MB)",
            ["page", "DynamoDB calls", "items read", "RCU", "calls' wall ms (p50)", "page wall ms (p50)"],
            [[r["page"], r["calls"], r["items_read"], r["rcu"], r["call_ms_p50"], r["wall_ms_p50"]] for r in rows],
        )
    if len(sizes) > 1:
        small, large = sizes[0], sizes[-1]
        print_table(
            f"{large:,} against {small:,} records ({large // small:,} times the table)",
            ["page", "items read", "RCU", "page wall time"],
            [
                [
                    a["page"],
                    f"{b['items_read']} / {a['items_read']}",
                    f"{b['rcu']:.1f} / {a['rcu']:.1f}",
                    f"{b['wall_ms_p50'] / a['wall_ms_p50']:.1f}x",
                ]
                for a, b in zip(results[small], results[large], strict=True)
            ],
        )
    data = {"sizes": sizes, "seed": args.seed, "seeding": seeding, "pages": results, "peak_rss_mb": peak_rss_mb()}
    save("task_index", data)
    return data


if __name__ == "__main__":
    main()
