"""A local stand-in for Lambda's SQS event source mappings and EventBridge schedules.

For each `@app.on_sqs_message` handler it long-polls the queue, receives up to the
handler's batch size, and invokes the handler with a Lambda-shaped SQS event on at most
`maximum_concurrency` concurrent invocations. With `schedules=True` it also invokes each
`@app.schedule` handler at its rate (or every `schedule_seconds`).

Two ways to invoke, named for what they are:
- sandboxes (`sandboxes=True`, the command line's default, what `make run` uses): each
  function runs in worker processes of its own with its configured timeout and memory
  (`devtools/runtime/sandbox.py`), so cold starts, module state, timeouts and crashes behave as in
  Lambda;
- in-process (`sandboxes=False`): the handler is called in a thread of this process. The
  test suite uses it, because its tests register test-only tasks in the test process. The
  context's remaining time is the function's timeout, but nothing is killed at the deadline.

What happens to a batch is Lambda's rule (`settle`): with ReportBatchItemFailures
(`settings.report_batch_item_failures`) a returned `batchItemFailures` list keeps exactly
those messages and deletes the others, an invalid list keeps the whole batch; without it a
return deletes the whole batch. A failed invocation (raise, timeout, crash, out of memory)
deletes nothing; the messages come back after their visibility timeout.

Run: `python -m devtools.runtime.runner` (queues and limits come from the stage's settings; see --help).
"""

from __future__ import annotations

import argparse
import importlib
import logging
import os
import signal
import threading
import time
import uuid
from collections import deque
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, replace
from datetime import UTC, datetime
from typing import Any, Protocol

from chalice.app import Chalice, Rate, ScheduledEventConfig, SQSEventConfig
from chalice.local import LambdaContext

from chalicelib.ops.consumers import MAX_CONCURRENCY
from chalicelib.ops.consumers import state as consumer_state
from chalicelib.platform.aws import client
from chalicelib.platform.config import get_settings
from chalicelib.platform.sqs import delete_messages, queue_arn, queue_url
from chalicelib.tasks.schedules import next_run, rate_seconds
from devtools.runtime.limits import function_limits
from devtools.runtime.logs import LogShipper, log_group
from devtools.runtime.sandbox import IDLE_RECLAIM_SECONDS, FunctionSpec, Invocation, SandboxPool
from devtools.runtime.stats import SAVE_SECONDS, FunctionStats, RuntimeStats, StatsServer, persist, restore

log = logging.getLogger("devtools.runtime.runner")


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


# ---------------------------------------------------------------- what happens to a batch


@dataclass(frozen=True)
class Settlement:
    """Which messages of a batch the event source deletes, and why the others stay."""

    delete: list[str]
    note: str | None = None
    warn: bool = False


def batch_item_failures(result: Any, message_ids: Sequence[str]) -> list[str] | None:
    """The message ids a ReportBatchItemFailures response keeps, or None if the response is invalid.

    Lambda's rules: a null or empty response, or a null or empty `batchItemFailures`, is a
    complete success; an entry without `itemIdentifier`, with an empty one, or with an id
    that is not in the batch makes the whole batch fail, as does a response that is not an
    object.
    """
    if result is None:
        return []
    if not isinstance(result, dict):
        return None
    failures = result.get("batchItemFailures")
    if failures is None:
        return []
    if not isinstance(failures, list):
        return None
    kept: list[str] = []
    for entry in failures:
        identifier = entry.get("itemIdentifier") if isinstance(entry, dict) else None
        if not isinstance(identifier, str) or identifier not in message_ids:
            return None
        kept.append(identifier)
    return kept


def settle(invocation: Invocation, message_ids: Sequence[str], report_batch_item_failures: bool) -> Settlement:
    """What Lambda's SQS event source mapping does with a batch after this invocation."""
    if invocation.failed:
        return Settlement([], f"invocation {invocation.status}: the whole batch returns to the queue", warn=True)
    if not report_batch_item_failures:
        failures = invocation.result.get("batchItemFailures") if isinstance(invocation.result, dict) else None
        note = None
        if failures:
            note = (
                "the handler returned batchItemFailures but the mapping has no ReportBatchItemFailures: "
                "Lambda ignores them and deletes the whole batch"
            )
        return Settlement(list(message_ids), note, warn=note is not None)
    kept = batch_item_failures(invocation.result, message_ids)
    if kept is None:
        return Settlement([], "invalid batchItemFailures response: the whole batch returns to the queue", warn=True)
    note = f"{len(kept)} of {len(message_ids)} messages reported failed; they return to the queue" if kept else None
    return Settlement([m for m in message_ids if m not in set(kept)], note)


# ---------------------------------------------------------------- how a function is invoked


class Function(Protocol):
    """Something that invokes one Lambda function and reports the outcome."""

    spec: FunctionSpec

    def invoke(self, event: dict[str, Any]) -> Invocation: ...

    @property
    def warm(self) -> int: ...

    def close(self) -> None: ...


class InProcessFunction:
    """Calls the handler in the calling thread (the test suite's mode; no isolation, no kill)."""

    def __init__(self, spec: FunctionSpec, handler: Callable[[dict[str, Any], Any], Any]) -> None:
        self.spec, self.handler = spec, handler

    def invoke(self, event: dict[str, Any]) -> Invocation:
        context = LambdaContext(
            self.spec.name, self.spec.memory_mb, max_runtime_ms=int(self.spec.timeout_seconds * 1000)
        )
        request_id = context.aws_request_id = str(uuid.uuid4())
        started = time.monotonic()
        try:
            result = self.handler(event, context)
        except Exception as exc:  # noqa: BLE001 - a failed invocation, reported like Lambda's
            return Invocation(
                "error", request_id, (time.monotonic() - started) * 1000, None, type(exc).__name__, str(exc)
            )
        return Invocation("ok", request_id, (time.monotonic() - started) * 1000, result)

    @property
    def warm(self) -> int:
        return 0

    def close(self) -> None:
        pass


class SandboxFunction:
    """Invokes the handler in the function's own sandboxes (`devtools/runtime/sandbox.py`)."""

    def __init__(
        self, spec: FunctionSpec, idle_seconds: float = IDLE_RECLAIM_SECONDS, shipper: LogShipper | None = None
    ) -> None:
        self.spec = spec
        self.pool = SandboxPool(spec, idle_seconds, shipper)

    def invoke(self, event: dict[str, Any]) -> Invocation:
        return self.pool.invoke(event)

    @property
    def warm(self) -> int:
        return self.pool.warm

    def close(self) -> None:
        self.pool.close()


# ---------------------------------------------------------------- event sources


class QueuePoller:
    """Polls one queue and invokes its function within the concurrency limit."""

    def __init__(
        self,
        source: SQSEventConfig,
        function: Function,
        stats: FunctionStats,
        concurrency: int,
        wait_seconds: int,
        report_batch_item_failures: bool,
    ) -> None:
        assert source.queue, "queue_arn sources are not supported locally"
        self.source, self.function, self.stats, self.wait_seconds = source, function, stats, wait_seconds
        self.report_batch_item_failures = report_batch_item_failures
        self.concurrency = max(1, concurrency)
        self.queue_name = source.queue
        self.url, self.arn = queue_url(source.queue), queue_arn(source.queue)
        self.region = client("sqs").meta.region_name
        self.deleted = 0
        # The ids of the latest messages this mapping deleted: a test asks whether its own message
        # went, which a queue's depth cannot say while other messages share the queue.
        self.deleted_ids: deque[str] = deque(maxlen=10_000)
        self.paused = False
        # Threads start lazily, so a pool as big as Lambda's highest maximum costs nothing until used.
        self._pool = ThreadPoolExecutor(max_workers=MAX_CONCURRENCY, thread_name_prefix=f"lambda-{source.name}")
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._poll, name=f"poller-{source.name}", daemon=True)
        self._lock = threading.Condition()
        self._looked_at = 0.0
        self.in_flight = 0

    def start(self) -> None:
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        self._thread.join(timeout=self.wait_seconds + 5)
        self._pool.shutdown(wait=True)
        self.function.close()

    def _poll(self) -> None:
        sqs = client("sqs")
        while not self._stop.is_set():
            self._obey()
            if self.paused:  # the mapping is disabled: nothing is received
                self._stop.wait(0.5)
                continue
            with self._lock:
                if self.in_flight >= self.concurrency:
                    self.stats.throttled()  # every concurrency slot is busy: the mapping waits
                    self._lock.wait(timeout=0.5)
                    continue
                self.in_flight += 1
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
                self._release()
                continue
            self._pool.submit(self._invoke, messages)

    def _release(self) -> None:
        with self._lock:
            self.in_flight -= 1
            self._lock.notify()

    def _obey(self) -> None:
        """Follow the queue's wanted consumer state (ops/consumers.py), looked up once a second:
        paused, and the maximum concurrency, as Lambda's event source mapping would."""
        now = time.monotonic()
        if now - self._looked_at < 1.0:
            return
        self._looked_at = now
        try:
            wanted = consumer_state(self.queue_name)
        except Exception:  # noqa: BLE001 - keep the last state while DynamoDB does not answer
            log.warning("could not read the consumer state of %s", self.queue_name)
            return
        if wanted["paused"] != self.paused:
            log.info("%s: consumers %s", self.source.name, "paused" if wanted["paused"] else "resumed")
        self.paused = bool(wanted["paused"])
        self.concurrency = max(1, int(wanted["max_concurrency"]))
        self.stats.max_concurrency = self.concurrency

    def _invoke(self, messages: list[dict[str, Any]]) -> None:
        try:
            event = {"Records": [lambda_record(m, self.arn, self.region) for m in messages]}
            invocation = self.function.invoke(event)
            self.stats.record(invocation)
            ids = [m["MessageId"] for m in messages]
            outcome = settle(invocation, ids, self.report_batch_item_failures)
            if outcome.note:
                log.log(
                    logging.WARNING if outcome.warn else logging.INFO,
                    "%s: %s (%s)",
                    self.source.name,
                    outcome.note,
                    invocation.error_message or invocation.status,
                )
            to_delete = set(outcome.delete)
            settled = [m for m in messages if m["MessageId"] in to_delete]
            if settled:
                count = delete_messages(self.queue_name, [m["ReceiptHandle"] for m in settled])
                self.deleted += count
                if count == len(settled):  # a partial failure is logged by delete_messages, ids unknown
                    self.deleted_ids.extend(m["MessageId"] for m in settled)
        except Exception:
            log.exception("%s: the batch could not be settled; it returns to the queue", self.source.name)
        finally:
            self._release()


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
    """Invokes one scheduled function at its rate (one invocation at a time)."""

    def __init__(self, source: ScheduledEventConfig, function: Function, stats: FunctionStats, every: float) -> None:
        self.source, self.function, self.stats, self.every = source, function, stats, every
        self.region = client("sqs").meta.region_name
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._loop, name=f"schedule-{source.name}", daemon=True)

    @staticmethod
    def interval(source: ScheduledEventConfig) -> float:
        """Seconds between invocations of a rate schedule (a cron schedule: see `cron`)."""
        expression = source.schedule_expression
        if isinstance(expression, Rate):
            return float(expression.value * _RATE_SECONDS[expression.unit])
        if isinstance(expression, str) and expression.startswith("rate("):
            return rate_seconds(expression)
        return 60.0

    @property
    def cron(self) -> str | None:
        """The EventBridge cron expression of a periodic task's schedule (run at its times, always)."""
        expression = self.source.schedule_expression
        return expression if isinstance(expression, str) and expression.startswith("cron(") else None

    def _pause(self) -> float:
        """Seconds until the next invocation: the rate's period, or the cron's next minute."""
        if self.cron is None:
            return self.every
        now = datetime.now(UTC)
        due = next_run(self.cron, now)
        return (due - now).total_seconds() if due is not None else 86_400.0

    def start(self) -> None:
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        self._thread.join(timeout=self.function.spec.timeout_seconds + 5)
        self.function.close()

    def _loop(self) -> None:
        while not self._stop.wait(self._pause()):
            invocation = self.function.invoke(scheduled_event(self.source.name, self.region))
            self.stats.record(invocation)
            if invocation.failed:
                log.error("scheduled invocation of %s failed: %s", self.source.name, invocation.error_message)
            else:
                log.info("%s: %s", self.source.name, invocation.result)


# ---------------------------------------------------------------- the runner


class EventSourceRunner:
    """Every SQS event source (and optionally every schedule) of a Chalice app, run locally."""

    def __init__(
        self,
        app_module: Any,
        concurrency: dict[str, int] | None = None,
        wait_seconds: int = 1,
        only: set[str] | None = None,
        schedules: bool = False,
        schedule_seconds: float | None = None,
        sandboxes: bool = False,
        limits: dict[str, dict[str, float]] | None = None,
        idle_seconds: float = IDLE_RECLAIM_SECONDS,
    ) -> None:
        app: Chalice = app_module.app
        settings = get_settings()
        self.stats = RuntimeStats()
        self.pollers: dict[str, QueuePoller] = {}
        self.schedules: dict[str, SchedulePoller] = {}
        self.sandboxes = sandboxes
        # Sandboxes' output goes to CloudWatch Logs, as Lambda's does (in-process handlers share this process's).
        self.shipper = LogShipper(client("logs")) if sandboxes else None
        for source in app.event_sources:
            if only and source.name not in only:
                continue
            is_queue = isinstance(source, SQSEventConfig)
            if not is_queue and not (isinstance(source, ScheduledEventConfig) and schedules):
                continue
            handler_name = source.handler_string.rsplit(".", 1)[-1]
            module_name = getattr(app_module, "__name__", "app")  # sandboxes import the app module by name
            spec = self._spec(source.name, module_name, handler_name, settings.stage, limits or {})
            spec = replace(spec, log_group=log_group(deployed_name(source.name)))
            function: Function = (
                SandboxFunction(spec, idle_seconds, self.shipper)
                if sandboxes
                else InProcessFunction(spec, getattr(app_module, handler_name))
            )
            if isinstance(source, SQSEventConfig):
                limit = (concurrency or {}).get(source.name) or source.maximum_concurrency or 1
                stats = FunctionStats(source.queue, source.batch_size, limit, spec.timeout_seconds, spec.memory_mb)
                stats.warm = lambda f=function: f.warm  # type: ignore[misc]
                self.stats.add(source.name, stats)
                self.pollers[source.name] = QueuePoller(
                    source, function, stats, limit, wait_seconds, settings.report_batch_item_failures
                )
                stats.in_use = lambda p=self.pollers[source.name]: p.in_flight  # type: ignore[misc]
            elif isinstance(source, ScheduledEventConfig):
                every = schedule_seconds or SchedulePoller.interval(source)
                stats = FunctionStats(None, None, 1, spec.timeout_seconds, spec.memory_mb)
                stats.warm = lambda f=function: f.warm  # type: ignore[misc]
                self.stats.add(source.name, stats)
                self.schedules[source.name] = SchedulePoller(source, function, stats, every)

    @staticmethod
    def _spec(name: str, module: str, handler: str, stage: str, limits: dict[str, dict[str, float]]) -> FunctionSpec:
        configured = function_limits(name, stage)
        spec = FunctionSpec(name, module, handler, float(configured.timeout_seconds), configured.memory_mb)
        override = limits.get(name, {})
        return replace(
            spec,
            timeout_seconds=float(override.get("timeout", spec.timeout_seconds)),
            memory_mb=int(override.get("memory", spec.memory_mb)),
        )

    def describe(self) -> list[str]:
        """One line per function: its source, batch size, concurrency, timeout and memory."""
        lines = []
        for name, stats in self.stats.functions.items():
            schedule = self.schedules.get(name)
            if stats.queue:
                source = f"queue {stats.queue}"
            else:
                assert schedule is not None
                source = schedule.cron or f"every {schedule.every:.0f} s"
            batch = f"batch {stats.batch_size}, " if stats.batch_size else ""
            lines.append(
                f"{name}: {source}, {batch}max concurrency {stats.max_concurrency}, "
                f"timeout {stats.timeout_seconds:g} s, memory {stats.memory_mb} MB"
            )
        return lines

    def start(self) -> EventSourceRunner:
        try:
            restore(self.stats)
        except Exception:  # noqa: BLE001 - counters from zero rather than no runner
            log.warning("could not restore the runtime counters; they start from zero")
        self._saving = threading.Event()
        threading.Thread(target=self._save_forever, name="runtime-stats-save", daemon=True).start()
        for poller in self.pollers.values():
            poller.start()
        for schedule in self.schedules.values():
            schedule.start()
        return self

    def stop(self) -> None:
        for poller in self.pollers.values():
            poller._stop.set()  # every poller stops receiving at once, then each drains
        for schedule in self.schedules.values():
            schedule.stop()
        for poller in self.pollers.values():
            poller.stop()
        self._saving.set()
        self._save()
        if self.shipper is not None:
            self.shipper.close()

    def _save(self) -> None:
        try:
            persist(self.stats)
        except Exception:  # noqa: BLE001 - the next save tries again
            log.warning("could not save the runtime counters")

    def _save_forever(self) -> None:
        while not self._saving.wait(SAVE_SECONDS):
            self._save()

    def __enter__(self) -> EventSourceRunner:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()


def deployed_name(function: str) -> str:
    """The function's name as deployed (Chalice's `<app>-<stage>-<function>`, with the stage's
    resource prefix), so its log group is the one the dashboard reads on AWS too."""
    settings = get_settings()
    prefix = os.environ.get("RESOURCE_PREFIX") or f"{settings.app_name}-{settings.stage}"
    return f"{prefix}-{function}"


def _pairs(items: list[str]) -> dict[str, str]:
    return dict(item.split("=", 1) for item in items)


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description="Run the app's SQS and scheduled handlers locally, as Lambda would.")
    parser.add_argument("--app", default="app", help="module holding the Chalice app")
    parser.add_argument("--only", action="append", default=[], help="run only this function (repeatable)")
    parser.add_argument("--concurrency", action="append", default=[], help="NAME=N, e.g. media_worker=2")
    parser.add_argument("--timeout", action="append", default=[], help="NAME=SECONDS, overrides the stage's")
    parser.add_argument("--memory", action="append", default=[], help="NAME=MB, overrides the stage's")
    parser.add_argument("--wait-seconds", type=int, default=5)
    parser.add_argument("--in-process", action="store_true", help="call handlers in threads, not sandboxes")
    parser.add_argument("--stats-port", type=int, default=0, help="serve GET /stats here (0: any free port)")
    parser.add_argument(
        "--schedule-seconds", type=float, default=60.0, help="run scheduled handlers this often (0: at their rate)"
    )
    parser.add_argument(
        "--sandbox-idle-seconds",
        type=float,
        default=IDLE_RECLAIM_SECONDS,
        help="reclaim a sandbox idle this long, as Lambda reclaims idle environments (the next start is cold)",
    )
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s %(message)s")
    limits: dict[str, dict[str, float]] = {}
    for key, values in (("timeout", args.timeout), ("memory", args.memory)):
        for name, value in _pairs(values).items():
            limits.setdefault(name, {})[key] = float(value)
    runner = EventSourceRunner(
        importlib.import_module(args.app),
        {k: int(v) for k, v in _pairs(args.concurrency).items()},
        args.wait_seconds,
        only=set(args.only) or None,
        schedules=True,
        schedule_seconds=args.schedule_seconds or None,
        sandboxes=not args.in_process,
        limits=limits,
        idle_seconds=args.sandbox_idle_seconds,
    )
    server = StatsServer(runner.stats, args.stats_port).start()
    stop = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: stop.set())
    with runner:
        mode = "in-process" if args.in_process else "sandboxes"
        for line in runner.describe():
            log.info("%s (%s)", line, mode)
        log.info("runtime counters at %s", server.url)
        try:
            stop.wait()
        except KeyboardInterrupt:
            pass
    server.stop()


if __name__ == "__main__":
    main()
