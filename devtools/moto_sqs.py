"""SQS sends and receives whose cost does not grow with the queue, as on SQS.

moto 5.2.5 reads a queue's whole attribute set for every message it sends (to see
`ContentBasedDeduplication`) and for every message it receives (to see
`MessageRetentionPeriod`), and that set includes the three `ApproximateNumberOfMessages…`
counts, each a pass over every message in the queue with two datetime computations per
message, so a send or receive costs more the longer the queue (bench/README.md § 9 has the
figures). A backlog (the queue-isolation bench, a fan-out) slowed the emulator to a crawl that SQS never shows.

This leaves the counts as they are wherever they are asked for (`GetQueueAttributes`, the
runner's stats) and changes three things: a send does not compute them (it never reads
them), the retention check reads the one attribute it needs, and a message's visible and
delayed tests compare with `time.time()` (what moto's slower `unix_time_millis` returns).
"""

from __future__ import annotations

import threading
import time
from typing import Any

_PATCHED = "_bookshelf_constant_cost"
_COUNTS = (
    "approximate_number_of_messages",
    "approximate_number_of_messages_delayed",
    "approximate_number_of_messages_not_visible",
)
_sending = threading.local()


def _count_unless_sending(counted: property) -> property:
    def get(self: Any) -> int:
        if getattr(_sending, "active", False):  # send_message reads the attributes, never the counts
            return 0
        value: int = counted.fget(self)  # type: ignore[misc]
        return value

    return property(get)


def _visible(self: Any) -> bool:
    return bool(time.time() * 1000 > self.visible_at)


def _delayed(self: Any) -> bool:
    return bool(time.time() * 1000 < self.delayed_until)


def patch() -> None:
    """Install the constant-cost send, receive and message checks into moto's SQS (idempotent)."""
    from moto.sqs import models

    backend_type, queue_type = models.SQSBackend, models.Queue
    send_original = backend_type.send_message
    if getattr(send_original, _PATCHED, False):
        return
    models.Message.visible = property(_visible)  # type: ignore[method-assign,assignment]
    models.Message.delayed = property(_delayed)  # type: ignore[method-assign,assignment]
    for name in _COUNTS:
        setattr(queue_type, name, _count_unless_sending(getattr(queue_type, name)))

    def send_message(self: Any, *args: Any, **kwargs: Any) -> Any:
        _sending.active = True
        try:
            return send_original(self, *args, **kwargs)
        finally:
            _sending.active = False

    def is_message_valid_based_on_retention_period(self: Any, queue_name: str, message: Any) -> bool:
        retention = int(self.get_queue(queue_name).message_retention_period)
        return bool(retention + message.sent_timestamp / 1000 > time.time())

    setattr(send_message, _PATCHED, True)
    backend_type.send_message = send_message  # type: ignore[method-assign]
    backend_type.is_message_valid_based_on_retention_period = is_message_valid_based_on_retention_period  # type: ignore[method-assign]
