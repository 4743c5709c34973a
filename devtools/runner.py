"""A local stand-in for Lambda's SQS event source mapping.

For each `@app.on_sqs_message` handler it long-polls the queue, receives up to the
handler's batch size, and invokes the very same handler with a Lambda-shaped SQS event
on at most `maximum_concurrency` concurrent invocations. Like a mapping without
ReportBatchItemFailures: a handler that returns deletes the whole batch; one that
raises deletes nothing (the messages come back after their visibility timeout).
With `schedules=True` it also invokes each `@app.schedule` handler at its rate (or
every `schedule_seconds`), with an EventBridge-shaped scheduled event.

Run: `python -m devtools.runner` (queues and limits come from the stage's settings).
"""

from __future__ import annotations

import argparse
import importlib
import logging
import signal
import threading
import time
import uuid
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import Any

from chalice.app import Chalice, Rate, ScheduledEventConfig, SQSEventConfig
from chalice.local import LambdaContext

from chalicelib.aws import client
from chalicelib.queues import delete_messages, queue_arn, queue_url

log = logging.getLogger("devtools.runner")


def lambda_record(message: dict[str, Any], arn: str, region: str) -> dict[str, Any]:
    """An SQS message as Lambda hands it to a function."""
    attributes = {
        name: {
            "stringValue": value.get("StringValue"),
            "binaryValue": value.get("BinaryValue"),
            "stringListValues": [],
            "binaryListValues": [],
            "dataType": value["DataType"],
        }
        for name, value in message.get("MessageAttributes", {}).items()
    }
    return {
        "messageId": message["MessageId"],
        "receiptHandle": message["ReceiptHandle"],
        "body": message["Body"],
        "attributes": message.get("Attributes", {}),
        "messageAttributes": attributes,
        "md5OfBody": message.get("MD5OfBody", ""),
        "eventSource": "aws:sqs",
        "eventSourceARN": arn,
        "awsRegion": region,
    }


@dataclass
class SourceStats:
    """Counters of one event source."""

    invocations: int = 0
    errors: int = 0
    messages: int = 0
    deleted: int = 0
    latencies: list[float] = field(default_factory=list)


class QueuePoller:
    """Polls one queue and invokes its handler within the concurrency limit."""

    def __init__(
        self, source: SQSEventConfig, handler: Callable[[dict[str, Any], Any], Any], concurrency: int, wait_seconds: int
    ) -> None:
        assert source.queue, "queue_arn sources are not supported locally"
        self.source, self.handler, self.wait_seconds = source, handler, wait_seconds
        self.concurrency = max(1, concurrency)
        self.queue_name = source.queue
        self.url, self.arn = queue_url(source.queue), queue_arn(source.queue)
        self.region = client("sqs").meta.region_name
        self.stats = SourceStats()
        self._slots = threading.BoundedSemaphore(self.concurrency)
        self._pool = ThreadPoolExecutor(max_workers=self.concurrency, thread_name_prefix=f"lambda-{source.name}")
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._poll, name=f"poller-{source.name}", daemon=True)
        self._lock = threading.Lock()
        self.in_flight = 0

    def start(self) -> None:
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        self._thread.join(timeout=self.wait_seconds + 5)
        self._pool.shutdown(wait=True)

    def _poll(self) -> None:
        sqs = client("sqs")
        while not self._stop.is_set():
            if not self._slots.acquire(timeout=0.5):
                continue
            try:
                messages = sqs.receive_message(
                    QueueUrl=self.url,
                    MaxNumberOfMessages=min(self.source.batch_size, 10),
                    WaitTimeSeconds=self.wait_seconds,
                    AttributeNames=["All"],
                    MessageAttributeNames=["All"],
                ).get("Messages", [])
            except Exception:
                log.exception("receive failed on %s", self.queue_name)
                messages = []
                time.sleep(1)
            if not messages:
                self._slots.release()
                continue
            with self._lock:
                self.in_flight += 1
            self._pool.submit(self._invoke, messages)

    def _invoke(self, messages: list[dict[str, Any]]) -> None:
        event = {"Records": [lambda_record(m, self.arn, self.region) for m in messages]}
        context = LambdaContext(self.source.name, 1024, max_runtime_ms=900_000)
        context.aws_request_id = str(uuid.uuid4())
        started = time.perf_counter()
        try:
            result = self.handler(event, context)
        except Exception as exc:  # noqa: BLE001 - a failed invocation leaves the batch in the queue
            self.stats.errors += 1
            log.info("invocation of %s failed (%s); batch left in the queue", self.source.name, exc)
        else:
            # ReportBatchItemFailures: the listed messages stay in the queue (minimal; see issue 16).
            kept = {f["itemIdentifier"] for f in (result or {}).get("batchItemFailures", [])}
            done = [m["ReceiptHandle"] for m in messages if m["MessageId"] not in kept]
            self.stats.deleted += delete_messages(self.queue_name, done)
        finally:
            self.stats.invocations += 1
            self.stats.messages += len(messages)
            self.stats.latencies.append(time.perf_counter() - started)
            with self._lock:
                self.in_flight -= 1
            self._slots.release()


_RATE_SECONDS = {Rate.MINUTES: 60, Rate.HOURS: 3600, Rate.DAYS: 86_400}


def scheduled_event(rule: str, region: str) -> dict[str, Any]:
    """An EventBridge scheduled event as Lambda hands it to a function."""
    return {
        "version": "0",
        "id": str(uuid.uuid4()),
        "detail-type": "Scheduled Event",
        "source": "aws.events",
        "account": "000000000000",
        "time": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
        "region": region,
        "resources": [f"arn:aws:events:{region}:000000000000:rule/{rule}"],
        "detail": {},
    }


class SchedulePoller:
    """Invokes one scheduled handler at its rate."""

    def __init__(
        self, source: ScheduledEventConfig, handler: Callable[[dict[str, Any], Any], Any], every: float
    ) -> None:
        self.source, self.handler, self.every = source, handler, every
        self.region = client("sqs").meta.region_name
        self.invocations = self.errors = 0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._loop, name=f"schedule-{source.name}", daemon=True)

    @staticmethod
    def interval(source: ScheduledEventConfig) -> float:
        """Seconds between invocations of a `Rate` schedule (cron schedules: hourly)."""
        expression = source.schedule_expression
        if isinstance(expression, Rate):
            return float(expression.value * _RATE_SECONDS[expression.unit])
        return 3600.0

    def start(self) -> None:
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        self._thread.join(timeout=30)

    def _loop(self) -> None:
        while not self._stop.wait(self.every):
            context = LambdaContext(self.source.name, 256, max_runtime_ms=60_000)
            context.aws_request_id = str(uuid.uuid4())
            try:
                result = self.handler(scheduled_event(self.source.name, self.region), context)
                log.info("%s: %s", self.source.name, result)
            except Exception:
                self.errors += 1
                log.exception("scheduled invocation of %s failed", self.source.name)
            self.invocations += 1


class EventSourceRunner:
    """Every SQS event source of a Chalice app, polled locally."""

    def __init__(
        self,
        app_module: Any,
        concurrency: dict[str, int] | None = None,
        wait_seconds: int = 1,
        only: set[str] | None = None,
        schedules: bool = False,
        schedule_seconds: float | None = None,
    ) -> None:
        app: Chalice = app_module.app
        self.pollers: dict[str, QueuePoller] = {}
        self.schedules: dict[str, SchedulePoller] = {}
        for source in app.event_sources:
            if only and source.name not in only:
                continue
            handler = getattr(app_module, source.handler_string.rsplit(".", 1)[-1])
            if isinstance(source, SQSEventConfig):
                limit = (concurrency or {}).get(source.name) or source.maximum_concurrency or 1
                self.pollers[source.name] = QueuePoller(source, handler, limit, wait_seconds)
            elif isinstance(source, ScheduledEventConfig) and schedules:
                every = schedule_seconds or SchedulePoller.interval(source)
                self.schedules[source.name] = SchedulePoller(source, handler, every)

    def start(self) -> EventSourceRunner:
        for component in (*self.pollers.values(), *self.schedules.values()):
            component.start()
        return self

    def stop(self) -> None:
        for poller in self.pollers.values():
            poller._stop.set()
        for component in (*self.schedules.values(), *self.pollers.values()):
            component.stop()

    def __enter__(self) -> EventSourceRunner:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description="Run the app's SQS handlers against their queues.")
    parser.add_argument("--app", default="app", help="module holding the Chalice app")
    parser.add_argument("--concurrency", action="append", default=[], help="NAME=N, e.g. media_worker=2")
    parser.add_argument("--wait-seconds", type=int, default=5)
    parser.add_argument(
        "--schedule-seconds", type=float, default=60.0, help="run scheduled handlers this often (0: at their rate)"
    )
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s %(message)s")
    overrides = {k: int(v) for k, v in (item.split("=", 1) for item in args.concurrency)}
    runner = EventSourceRunner(
        importlib.import_module(args.app),
        overrides,
        args.wait_seconds,
        schedules=True,
        schedule_seconds=args.schedule_seconds or None,
    )
    stop = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: stop.set())
    with runner:
        for name, poller in runner.pollers.items():
            log.info(
                "polling %s for %s (batch %d, concurrency %d)",
                poller.queue_name,
                name,
                poller.source.batch_size,
                poller.concurrency,
            )
        for name, schedule in runner.schedules.items():
            log.info("invoking %s every %.0f s", name, schedule.every)
        try:
            stop.wait()
        except KeyboardInterrupt:
            pass


if __name__ == "__main__":
    main()
