"""Bring task records in line with what sits in the dead-letter queues.

A message reaches a DLQ in one of two ways. The worker dead-letters it itself after a
final failure, and the record says FAILURE already. Or SQS's redrive policy moves it
after `maxReceiveCount` receives that never finished: a Lambda timeout, a crash or an
AWS outage during the last attempt. No code runs at that moment, so the record would
stay PENDING, STARTED or RETRY; this pass (a scheduled Lambda, and `make run`'s runner)
marks those FAILURE with the reason.
"""

from __future__ import annotations

from chalicelib.config import QueueSettings, get_settings
from chalicelib.observability import emit, logger
from chalicelib.queues import peek
from chalicelib.tasks import records
from chalicelib.tasks.envelope import identity


def _reason(message: dict[str, object], queue: QueueSettings) -> str:
    attributes = message.get("MessageAttributes") or {}
    tagged = attributes.get("failure-reason", {}) if isinstance(attributes, dict) else {}
    if isinstance(tagged, dict) and tagged.get("StringValue"):
        return str(tagged["StringValue"])
    return (
        f"moved to the dead-letter queue by the redrive policy after {queue.max_receive_count} receives "
        "without a result (the attempts timed out, crashed or met an AWS outage)"
    )


def reconcile_dead_letters(limit_per_queue: int = 1000) -> dict[str, int]:
    """Mark FAILURE every task whose message is in a DLQ but whose record is not final."""
    seen = marked = 0
    for queue in get_settings().queues.values():
        for message in peek(queue.dlq_name, limit=limit_per_queue, hold_seconds=10):
            seen += 1
            task_id, name = identity(str(message.get("Body", "")), str(message["MessageId"]))
            reason = _reason(message, queue)
            if records.mark_dead_lettered(task_id, name, queue.key, reason):
                marked += 1
                logger.warning(
                    "task record marked FAILURE from its dead-lettered message",
                    extra={"task_id": task_id, "task": name, "queue": queue.name, "reason": reason},
                )
                emit("DeadLettersReconciled", queue=queue.key)
    return {"dead_lettered": seen, "records_marked": marked}
