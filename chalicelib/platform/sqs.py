"""SQS primitives every layer may use: queue URLs and ARNs, acknowledging, hiding, dead-lettering, peeking.

The operator views (depths, overview, redrive, dead-letter browsing) live in `queues.py`, above the
task framework; this module sits below it and imports only configuration, clients and errors.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from functools import cache
from typing import Any

from chalicelib.platform.aws import client
from chalicelib.platform.config import QueueSettings, get_settings
from chalicelib.platform.errors import NotFound
from chalicelib.platform.observability import logger

SQS_BATCH = 10
MAX_REASON = 1000
FAILURE_ATTRIBUTES = ("failure-reason", "source-queue", "task-id", "receive-count")


@cache
def queue_url(name: str) -> str:
    """The URL of queue `name` (cached)."""
    return str(client("sqs").get_queue_url(QueueName=name)["QueueUrl"])


@cache
def queue_arn(name: str) -> str:
    """The ARN of queue `name` (cached)."""
    attrs = client("sqs").get_queue_attributes(QueueUrl=queue_url(name), AttributeNames=["QueueArn"])
    return str(attrs["Attributes"]["QueueArn"])


def queue_settings(key_or_name: str) -> QueueSettings:
    """The work queue with this routing key, queue name or ARN."""
    name = key_or_name.rsplit(":", 1)[-1]
    for queue in get_settings().queues.values():
        if name in (queue.key, queue.name):
            return queue
    raise NotFound(f"unknown queue {key_or_name!r}")


def chunks(items: Sequence[Any], size: int = SQS_BATCH) -> Iterable[Sequence[Any]]:
    """Consecutive slices of at most `size` items."""
    for start in range(0, len(items), size):
        yield items[start : start + size]


def delete_messages(name: str, receipt_handles: Sequence[str]) -> int:
    """Delete messages by receipt handle; returns how many SQS accepted."""
    sqs, url, deleted = client("sqs"), queue_url(name), 0
    for chunk in chunks(receipt_handles):
        entries = [{"Id": str(i), "ReceiptHandle": handle} for i, handle in enumerate(chunk)]
        response = sqs.delete_message_batch(QueueUrl=url, Entries=entries)
        deleted += len(response.get("Successful", []))
        for failed in response.get("Failed", []):
            logger.warning("could not delete message; it will be delivered again", extra={"failure": failed})
    return deleted


def change_visibility(name: str, receipt_handle: str, seconds: int) -> None:
    """Hide a received message for `seconds` (the retry backoff)."""
    client("sqs").change_message_visibility(
        QueueUrl=queue_url(name), ReceiptHandle=receipt_handle, VisibilityTimeout=max(0, min(seconds, 43_200))
    )


def dead_letter(
    queue: QueueSettings, body: str, reason: str, task_id: str | None = None, receives: int | None = None
) -> None:
    """Send a message body to the queue's DLQ, tagged with why it failed and how often its queue delivered it.

    The DLQ message's own ApproximateReceiveCount counts every read of the DLQ (each look at
    the dashboard's list is one), so the deliveries that led here travel as an attribute.
    """
    attributes = {
        "failure-reason": {"DataType": "String", "StringValue": (reason or "unknown")[:MAX_REASON]},
        "source-queue": {"DataType": "String", "StringValue": queue.name},
    }
    if task_id:
        attributes["task-id"] = {"DataType": "String", "StringValue": task_id[:256]}
    if receives is not None:
        attributes["receive-count"] = {"DataType": "Number", "StringValue": str(int(receives))}
    client("sqs").send_message(QueueUrl=queue_url(queue.dlq_name), MessageBody=body, MessageAttributes=attributes)


def peek(name: str, limit: int = 1000, hold_seconds: int = 30) -> list[dict[str, Any]]:
    """Read up to `limit` messages of queue `name` without consuming them.

    Each batch is hidden for `hold_seconds` while reading on (receiving with a zero
    visibility timeout would return the same first ten every time), then every message
    read is made visible again.
    """
    sqs, url = client("sqs"), queue_url(name)
    seen: dict[str, dict[str, Any]] = {}
    while len(seen) < limit:
        batch = sqs.receive_message(
            QueueUrl=url,
            MaxNumberOfMessages=min(SQS_BATCH, limit - len(seen)),
            VisibilityTimeout=hold_seconds,
            MessageAttributeNames=["All"],
            AttributeNames=["All"],
            WaitTimeSeconds=0,
        ).get("Messages", [])
        fresh = [m for m in batch if m["MessageId"] not in seen]
        if not fresh:
            break
        seen.update({m["MessageId"]: m for m in fresh})
    for chunk in chunks([m["ReceiptHandle"] for m in seen.values()]):
        sqs.change_message_visibility_batch(
            QueueUrl=url,
            Entries=[{"Id": str(i), "ReceiptHandle": handle, "VisibilityTimeout": 0} for i, handle in enumerate(chunk)],
        )
    return list(seen.values())
