"""A default-queue consumer whose invocations have a short, truthful deadline (tests, bench).

Like the local runner (long polling, batches of DEFAULT_BATCH_SIZE, the batch settled as
Lambda's event source mapping does: with ReportBatchItemFailures only the reported
messages stay, without it the handler deleted what it finished and raised; a failed
invocation leaves the whole batch), but in-process, so calls can be counted and the
handler runs in this interpreter; each invocation gets a `LambdaContext` of `timeout_ms`,
so `get_remaining_time_in_millis()` tells the truth, and the longest invocation is measured
against it. It does not stop an overrunning invocation (the sandboxes of `make run` do):
it counts it. It can also send every fan-out page message twice, as SQS may.
"""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any


@dataclass
class DriverStats:
    """What the consumer saw: invocations, the longest against the timeout, duplicated page ids."""

    invocations: int = 0
    failed_invocations: int = 0
    longest_ms: float = 0.0
    over_timeout: int = 0
    duplicated: set[str] = field(default_factory=set)


class Driver:
    """`threads` concurrent consumers of the default queue, each invoking `app_module.default_worker`."""

    def __init__(
        self, app_module: Any, settings: Any, timeout_ms: int, threads: int = 2, duplicate_pages: bool = False
    ) -> None:
        self.app_module, self.settings, self.timeout_ms = app_module, settings, timeout_ms
        self.threads, self.duplicate_pages = threads, duplicate_pages
        self.stats = DriverStats()
        self._lock = threading.Lock()
        self._stop = threading.Event()

    def _step(self) -> None:
        from chalice.local import LambdaContext

        from chalicelib.platform.aws import client
        from chalicelib.platform.sqs import delete_messages, queue_arn, queue_url
        from devtools.runtime.runner import batch_item_failures, lambda_record

        name = self.settings.default.name
        sqs = client("sqs")
        messages = sqs.receive_message(
            QueueUrl=queue_url(name),
            MaxNumberOfMessages=min(self.settings.default.batch_size, 10),
            WaitTimeSeconds=1,
            AttributeNames=["All"],
            MessageAttributeNames=["All"],
        ).get("Messages", [])
        if not messages:
            return
        if self.duplicate_pages:
            for message in messages:
                body = json.loads(message["Body"])
                with self._lock:
                    fresh = body.get("task") == "mail.fanout_page" and body["id"] not in self.stats.duplicated
                    if fresh:
                        self.stats.duplicated.add(body["id"])
                if fresh:
                    sqs.send_message(QueueUrl=queue_url(name), MessageBody=message["Body"])
        event = {"Records": [lambda_record(m, queue_arn(name), self.settings.region) for m in messages]}
        context = LambdaContext("default_worker", 512, max_runtime_ms=self.timeout_ms)
        started = time.perf_counter()
        failed, result = False, None
        try:
            result = self.app_module.default_worker(event, context)
        except Exception as exc:  # noqa: BLE001 - the legacy mode raises for a partial batch, as in Lambda
            assert type(exc).__name__ == "BatchIncomplete", exc
            failed = True
        elapsed = (time.perf_counter() - started) * 1000
        if not failed and self.settings.report_batch_item_failures:
            kept = batch_item_failures(result, [m["MessageId"] for m in messages])
            assert kept is not None, f"invalid batch response {result!r}"
            done = [m["ReceiptHandle"] for m in messages if m["MessageId"] not in set(kept)]
            delete_messages(name, done)
        with self._lock:
            self.stats.invocations += 1
            self.stats.failed_invocations += int(failed)
            self.stats.longest_ms = max(self.stats.longest_ms, elapsed)
            self.stats.over_timeout += int(elapsed >= self.timeout_ms)

    def _loop(self) -> None:
        while not self._stop.is_set():
            self._step()

    def run_until(self, done: Callable[[], bool], limit_s: float) -> DriverStats:
        """Consume until `done()` (checked every second) or fail after `limit_s` seconds."""
        workers = [threading.Thread(target=self._loop, daemon=True) for _ in range(self.threads)]
        for worker in workers:
            worker.start()
        deadline = time.monotonic() + limit_s
        try:
            while not done():
                assert time.monotonic() < deadline, f"fan-out not done after {limit_s}s: {self.stats}"
                time.sleep(1)
        finally:
            self._stop.set()
            for worker in workers:
                worker.join(timeout=self.timeout_ms / 1000 + 5)
        return self.stats
