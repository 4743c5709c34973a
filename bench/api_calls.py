"""AWS API calls per book created and per task processed, counted at botocore (every call
the app, PynamoDB and the event source mapping make), and a monthly cost estimate.

  python -m bench.api_calls [--subscribers 2] [--books 5] [--direct]

`--direct` creates the books with `cover_upload` and posts the cover to S3 as a client
would (presigned POST, counted as one S3 PUT request); S3's event drives the media worker,
and the upload-expiry task (a short URL lifetime here) runs too.
"""

from __future__ import annotations

import argparse
import base64
import contextvars
import json
import threading
import time
from collections import Counter, defaultdict
from typing import Any

import requests

from bench.common import emulator, photo_jpeg, print_table, save

# us-east-1 list prices (USD) as published by AWS, read 2025-01; check before relying on them.
PRICES = {
    "apigateway_rest_per_million": 3.50,
    "lambda_requests_per_million": 0.20,
    "lambda_gb_second": 0.0000166667,
    "dynamodb_wru_per_million": 0.625,
    "dynamodb_rru_per_million": 0.125,
    "sqs_requests_per_million": 0.40,
    "s3_put_per_thousand": 0.005,
    "s3_get_per_thousand": 0.0004,
    "ses_per_thousand_emails": 0.10,
}
MEMORY_GB = {"api": 0.5, "media_worker": 1.5, "default_worker": 0.5}
WRITES = {"PutItem", "UpdateItem", "DeleteItem", "BatchWriteItem", "TransactWriteItems"}
S3_GETS = {"GetObject", "HeadObject"}
HANDLER_TIMEOUT_MS = 60_000
# PUT /books/{id} after each book's tasks: a change that keeps the authors, then one that moves them.
_UPDATES = {
    "api: PUT /books/{id} (title)": {"title": "Cost, revised"},
    "api: PUT /books/{id} (authors)": {"authors": ["Counted Author", "Second Author"]},
}

_bucket: contextvars.ContextVar[str] = contextvars.ContextVar("bucket", default="setup")
_calls: dict[str, Counter[tuple[str, str]]] = defaultdict(Counter)
_units: dict[str, Counter[str]] = defaultdict(Counter)
# The calls of the request now running, as (start, end) on the monotonic clock: the outbox's
# threads carry the context, so a send made while the transaction commits lands here too.
_spans: contextvars.ContextVar[list[tuple[float, float, int]] | None] = contextvars.ContextVar("spans", default=None)
_depths: dict[str, list[int]] = defaultdict(list)


def _install_counter() -> None:
    """Count every botocore API call into the current bucket (the calls still go out)."""
    from botocore.client import BaseClient

    original = BaseClient._make_api_call

    def counted(self: BaseClient, operation: str, params: dict[str, Any]) -> Any:
        service = self.meta.service_model.service_name
        bucket = _bucket.get()
        _calls[bucket][(service, operation)] += 1
        if service == "dynamodb" and operation == "TransactWriteItems":
            _units[bucket]["wru"] += 2 * len(params.get("TransactItems", []))  # transactions cost 2 WRU an item
        elif service == "dynamodb" and operation == "BatchWriteItem":
            _units[bucket]["wru"] += sum(len(v) for v in params.get("RequestItems", {}).values())
        elif service == "dynamodb" and operation == "BatchGetItem":
            _units[bucket]["rru"] += sum(len(v.get("Keys", [])) for v in params.get("RequestItems", {}).values())
        elif service == "dynamodb" and operation in WRITES:
            _units[bucket]["wru"] += 1
        elif service == "dynamodb" and operation != "DescribeTable":
            _units[bucket]["rru"] += 1
        started = time.monotonic()
        try:
            return original(self, operation, params)
        finally:
            if (spans := _spans.get()) is not None:
                spans.append((started, time.monotonic(), threading.get_ident()))

    BaseClient._make_api_call = counted


def _depth(spans: list[tuple[float, float, int]], thread: int) -> int:
    """How many calls the request waited for one after another: the most non-overlapping calls
    (earliest end first) among its own thread's and those other threads started before its own
    last call ended (the outbox's sends); an acknowledgement started after the commit is none."""
    own_end = max((end for _, end, ident in spans if ident == thread), default=float("-inf"))
    awaited = [(start, end) for start, end, ident in spans if ident == thread or start <= own_end]
    depth, free_from = 0, float("-inf")
    for start, end in sorted(awaited, key=lambda s: s[1]):
        if start >= free_from:
            depth, free_from = depth + 1, end
    return depth


def _request(bucket: str, send: Any) -> Any:
    """Make one API request counted into `bucket`, and note its sequential depth."""
    token, spans = _bucket.set(bucket), _spans.set([])
    try:
        response = send()
        _depths[bucket].append(_depth(_spans.get() or [], threading.get_ident()))
        return response
    finally:
        _spans.reset(spans)
        _bucket.reset(token)


def _drain(app_module: Any, queue_name: str, handler: str, durations: dict[str, list[float]]) -> int:
    """Act as the event source mapping: receive, invoke, delete the batch on success."""
    from chalice.local import LambdaContext

    from chalicelib.platform.aws import client
    from chalicelib.platform.sqs import delete_messages, queue_arn, queue_url
    from devtools.runner import lambda_record

    handled = 0
    while True:
        token = _bucket.set("event source mapping")
        messages = (
            client("sqs")
            .receive_message(
                QueueUrl=queue_url(queue_name),
                MaxNumberOfMessages=10 if handler == "default_worker" else 1,
                WaitTimeSeconds=1,
                AttributeNames=["All"],
                MessageAttributeNames=["All"],
            )
            .get("Messages", [])
        )
        _bucket.reset(token)
        if not messages:
            return handled
        event = {"Records": [lambda_record(m, queue_arn(queue_name), "us-east-1") for m in messages]}
        token = _bucket.set(handler)
        started = time.perf_counter()
        # A deployed timeout, not chalice's 3 s default: the fan-out hands off its page when
        # too little time is left, which with 3 s is always (it would never finish).
        getattr(app_module, handler)(event, LambdaContext(handler, 512, max_runtime_ms=HANDLER_TIMEOUT_MS))
        durations[handler].append(time.perf_counter() - started)
        _bucket.reset(token)
        token = _bucket.set("event source mapping")
        delete_messages(queue_name, [m["ReceiptHandle"] for m in messages])
        _bucket.reset(token)
        handled += len(messages)


def _dollars(calls: Counter[tuple[str, str]], units: Counter[str]) -> dict[str, float]:
    per = {"dynamodb": 0.0, "sqs": 0.0, "s3": 0.0, "ses": 0.0}
    per["dynamodb"] = (
        units["wru"] * PRICES["dynamodb_wru_per_million"] / 1e6
        + units["rru"] * PRICES["dynamodb_rru_per_million"] / 1e6
    )
    for (service, operation), n in calls.items():
        if service == "sqs" and operation != "GetQueueUrl":
            per["sqs"] += n * PRICES["sqs_requests_per_million"] / 1e6
        elif service == "s3":
            price = PRICES["s3_get_per_thousand"] if operation in S3_GETS else PRICES["s3_put_per_thousand"]
            per["s3"] += n * price / 1e3
        elif service in ("ses", "sesv2") and operation == "SendEmail":
            per["ses"] += n * PRICES["ses_per_thousand_emails"] / 1e3
    return per


def main(argv: list[str] | None = None) -> dict[str, Any]:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--subscribers", type=int, default=2)
    parser.add_argument("--books", type=int, default=5)
    parser.add_argument("--direct", action="store_true", help="direct upload to S3 instead of an inline cover")
    args = parser.parse_args(argv)
    photo = photo_jpeg(4000, 3000)
    cover = base64.b64encode(photo).decode()
    ttl = 3
    with emulator({"UPLOAD_TTL_SECONDS": str(ttl), "UPLOAD_EXPIRY_MARGIN_SECONDS": "0"} if args.direct else None):
        from chalice.test import Client

        import app
        from chalicelib.platform.config import get_settings
        from chalicelib.platform.sqs import queue_url
        from infra.local import create_api_key

        settings = get_settings()
        for queue in (settings.media.name, settings.default.name):
            queue_url(queue)  # resolved once per container; not per book
        _install_counter()
        key = create_api_key("bench")
        headers = {"Authorization": f"Bearer {key}", "Content-Type": "application/json"}
        durations: dict[str, list[float]] = defaultdict(list)
        tasks = 0
        with Client(app.app) as client:
            author = "Counted Author"
            for i in range(args.subscribers):
                client.http.post(
                    f"/authors/{author.replace(' ', '%20')}/subscribers",
                    headers=headers,
                    body=json.dumps({"email": f"reader{i}@example.org"}),
                )
            for _ in range(args.books):
                started = time.perf_counter()
                body: dict[str, Any] = {"title": "Cost", "authors": [author], "cover": cover}
                if args.direct:
                    body.pop("cover")
                    body["cover_upload"] = {"content_type": "image/jpeg", "size": len(photo)}
                response = _request(
                    "api: POST /books",
                    lambda body=body: client.http.post("/books", headers=headers, body=json.dumps(body)),
                )
                durations["api"].append(time.perf_counter() - started)
                assert response.status_code == 202, response.body
                book_id = json.loads(response.body)["book"]["id"]
                if args.direct:
                    upload = json.loads(response.body)["upload"]
                    files = {"file": ("cover.jpg", photo, "image/jpeg")}
                    sent = requests.post(upload["url"], data=upload["fields"], files=files, timeout=60)
                    assert sent.status_code == 204, sent.text
                    _calls["client: S3 POST"][("s3", "PostObject")] += 1
                tasks += _drain(app, settings.media.name, "media_worker", durations)
                tasks += _drain(app, settings.default.name, "default_worker", durations)  # fan-out
                tasks += _drain(app, settings.default.name, "default_worker", durations)  # the mails
                if args.direct:
                    time.sleep(ttl + 1)  # the upload-expiry task's delay
                    tasks += _drain(app, settings.default.name, "default_worker", durations)
                _request("api: GET /books/{id}", lambda book_id=book_id: client.http.get(f"/books/{book_id}"))
                for bucket, change in _UPDATES.items():  # after the tasks: no worker writes meanwhile
                    updated = _request(
                        bucket,
                        lambda book_id=book_id, change=change: client.http.put(
                            f"/books/{book_id}", headers=headers, body=json.dumps(change)
                        ),
                    )
                    assert updated.status_code == 200, updated.body
    books = args.books
    rows = []
    for bucket in (
        "api: POST /books",
        "client: S3 POST",
        "media_worker",
        "default_worker",
        "event source mapping",
        "api: GET /books/{id}",
        *_UPDATES,
    ):
        by_service: Counter[str] = Counter()
        for (service, _), n in _calls[bucket].items():
            by_service["ses" if service == "sesv2" else service] += n
        rows.append(
            [
                bucket,
                *(by_service[s] / books for s in ("dynamodb", "sqs", "s3", "ses")),
                sum(by_service.values()) / books,
                _units[bucket]["wru"] / books,
                _units[bucket]["rru"] / books,
            ]
        )
    depths = [[b, max(d), sum(d) / len(d)] for b, d in _depths.items()]
    print_table(
        "Sequential AWS calls per request (the calls it waited for one after another)",
        ["request", "max", "mean"],
        depths,
    )
    print_table(
        f"AWS API calls per book (cover + {args.subscribers} subscribers → {tasks // books} tasks), mean of {books}",
        ["where", "DynamoDB", "SQS", "S3", "SES", "all", "WRU", "RRU"],
        rows,
    )
    detail = [[b, f"{s}:{o}", n / books] for b, c in _calls.items() if b != "setup" for (s, o), n in sorted(c.items())]
    print_table("Calls per book by operation", ["where", "operation", "calls"], detail)

    # Monthly cost for 1 million books like these.
    million = 1e6
    all_calls: Counter[tuple[str, str]] = Counter()
    all_units: Counter[str] = Counter()
    for bucket in ("api: POST /books", "client: S3 POST", "media_worker", "default_worker", "event source mapping"):
        all_calls.update(_calls[bucket])
        all_units.update(_units[bucket])
    per_book = {k: v / books for k, v in _dollars(all_calls, all_units).items()}
    invocations = {h: len(d) / books for h, d in durations.items()}
    gb_seconds = sum(sum(d) / books * MEMORY_GB[h] for h, d in durations.items())
    lam = (sum(invocations.values()) + 1) * PRICES["lambda_requests_per_million"] / 1e6  # +1: the authorizer
    cost = {
        "API Gateway (REST)": PRICES["apigateway_rest_per_million"],
        "Lambda requests (incl. authorizer)": lam * million,
        "Lambda compute (GB-s, emulator timings)": gb_seconds * PRICES["lambda_gb_second"] * million,
        "DynamoDB on demand": per_book["dynamodb"] * million,
        "SQS": per_book["sqs"] * million,
        "S3 requests": per_book["s3"] * million,
        f"SES ({args.subscribers} emails a book)": per_book["ses"] * million,
    }
    rows = [[k, v] for k, v in cost.items()] + [["total", sum(cost.values())]]
    print_table("Monthly cost for 1,000,000 books (USD, us-east-1 list prices, no free tier)", ["item", "USD"], rows)
    data = {
        "books": books,
        "tasks": tasks,
        "calls": {b: {f"{s}:{o}": n for (s, o), n in c.items()} for b, c in _calls.items()},
        "units": {b: dict(u) for b, u in _units.items()},
        "sequential_depth": {b: d for b, d in _depths.items()},
        "invocations_per_book": invocations,
        "gb_seconds_per_book": gb_seconds,
        "monthly_cost_usd": cost,
        "prices": PRICES,
    }
    save("api_calls_direct" if args.direct else "api_calls", data)
    return data


if __name__ == "__main__":
    main()
