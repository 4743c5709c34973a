"""SQS operations: queue URLs, acknowledging, dead-lettering, depth statistics and redrive."""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from functools import cache
from typing import Any

from botocore.exceptions import ClientError

from chalicelib.aws import client
from chalicelib.config import QueueSettings, get_settings
from chalicelib.errors import NotFound
from chalicelib.observability import logger
from chalicelib.runtime_stats import runtime_by_queue, runtime_of

SQS_BATCH = 10
MAX_REASON = 1000
FAILURE_ATTRIBUTES = ("failure-reason", "source-queue", "task-id")


@cache
def queue_url(name: str) -> str:
    """The URL of queue `name` (cached)."""
    return client("sqs").get_queue_url(QueueName=name)["QueueUrl"]


@cache
def queue_arn(name: str) -> str:
    """The ARN of queue `name` (cached)."""
    attrs = client("sqs").get_queue_attributes(QueueUrl=queue_url(name), AttributeNames=["QueueArn"])
    return attrs["Attributes"]["QueueArn"]


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


def dead_letter(queue: QueueSettings, body: str, reason: str, task_id: str | None = None) -> None:
    """Send a message body to the queue's DLQ, tagged with why it failed."""
    attributes = {
        "failure-reason": {"DataType": "String", "StringValue": (reason or "unknown")[:MAX_REASON]},
        "source-queue": {"DataType": "String", "StringValue": queue.name},
    }
    if task_id:
        attributes["task-id"] = {"DataType": "String", "StringValue": task_id[:256]}
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


@dataclass(frozen=True)
class QueueDepth:
    """Approximate message counts of one queue."""

    name: str
    visible: int
    in_flight: int
    delayed: int
    oldest_age_seconds: int | None = None

    def as_dict(self) -> dict[str, Any]:
        """JSON form."""
        return {
            "name": self.name,
            "visible": self.visible,
            "in_flight": self.in_flight,
            "delayed": self.delayed,
        }


def depth(name: str) -> QueueDepth:
    """Current approximate counts of queue `name`."""
    attrs = client("sqs").get_queue_attributes(
        QueueUrl=queue_url(name),
        AttributeNames=[
            "ApproximateNumberOfMessages",
            "ApproximateNumberOfMessagesNotVisible",
            "ApproximateNumberOfMessagesDelayed",
        ],
    )["Attributes"]
    return QueueDepth(
        name=name,
        visible=int(attrs.get("ApproximateNumberOfMessages", 0)),
        in_flight=int(attrs.get("ApproximateNumberOfMessagesNotVisible", 0)),
        delayed=int(attrs.get("ApproximateNumberOfMessagesDelayed", 0)),
    )


def overview() -> list[dict[str, Any]]:
    """Each work queue with its DLQ: the Flower-like view behind `GET /queues`."""
    result, runtime = [], runtime_by_queue()
    for queue in get_settings().queues.values():
        result.append(
            {
                "queue": queue.key,
                **depth(queue.name).as_dict(),
                "max_concurrency": queue.max_concurrency,
                "batch_size": queue.batch_size,
                "max_receive_count": queue.max_receive_count,
                "dead_letter": depth(queue.dlq_name).as_dict(),
                **runtime_of(queue.name, runtime),
            }
        )
    return result


_UNSUPPORTED = {"UnsupportedOperation", "InvalidAction", "NotImplemented", "500", "InternalFailure"}


def redrive(key_or_name: str, max_messages: int = 10_000) -> dict[str, Any]:
    """Move the DLQ's messages back to the work queue; nothing is deleted before it is re-sent."""
    queue = queue_settings(key_or_name)
    try:
        task = client("sqs").start_message_move_task(
            SourceArn=queue_arn(queue.dlq_name), DestinationArn=queue_arn(queue.name)
        )
        return {"queue": queue.key, "method": "StartMessageMoveTask", "task_handle": task["TaskHandle"]}
    except ClientError as exc:
        code = exc.response.get("Error", {}).get("Code", "")
        if code not in _UNSUPPORTED:
            raise
        logger.info("StartMessageMoveTask unsupported by endpoint; moving messages one batch at a time")
    # Bounded by what the DLQ holds now, so messages that fail again are not moved in circles.
    present = depth(queue.dlq_name)
    moved = _move_messages(queue.dlq_name, queue.name, min(max_messages, present.visible))
    return {"queue": queue.key, "method": "receive-send-delete", "moved": moved}


def _move_messages(source: str, destination: str, max_messages: int) -> int:
    sqs, src, dst, moved = client("sqs"), queue_url(source), queue_url(destination), 0
    while moved < max_messages:
        messages = sqs.receive_message(
            QueueUrl=src,
            MaxNumberOfMessages=min(SQS_BATCH, max_messages - moved),
            WaitTimeSeconds=1,
            VisibilityTimeout=60,
            MessageAttributeNames=["All"],
        ).get("Messages", [])
        if not messages:
            break
        entries = [
            {
                "Id": str(i),
                "MessageBody": m["Body"],
                "MessageAttributes": {
                    k: v for k, v in m.get("MessageAttributes", {}).items() if k not in FAILURE_ATTRIBUTES
                },
            }
            for i, m in enumerate(messages)
        ]
        sent = sqs.send_message_batch(QueueUrl=dst, Entries=entries)
        ok = {entry["Id"] for entry in sent.get("Successful", [])}
        delete_messages(source, [m["ReceiptHandle"] for i, m in enumerate(messages) if str(i) in ok])
        moved += len(ok)
        if len(ok) < len(messages):
            logger.warning("some messages were not re-sent and stay in the DLQ", extra={"failed": sent.get("Failed")})
            break
    return moved
