"""What operators see and do with the queues: depths, the overview, redrive and dead-letter browsing.

The SQS primitives under it (URLs, deletes, peeks) are in `sqs.py`, which the task framework uses.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, replace
from typing import Any

from botocore.exceptions import ClientError

from chalicelib.ops import backlog, consumers, local_runtime
from chalicelib.platform.aws import client
from chalicelib.platform.config import QueueSettings, get_settings
from chalicelib.platform.observability import logger
from chalicelib.platform.sqs import (
    FAILURE_ATTRIBUTES,
    SQS_BATCH,
    chunks,
    delete_messages,
    peek,
    queue_arn,
    queue_settings,
    queue_url,
)
from chalicelib.tasks.adapters import identity


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
            "oldest_age_seconds": self.oldest_age_seconds,
        }


def depth(name: str, oldest_age_seconds: int | None = None) -> QueueDepth:
    """Current approximate counts of queue `name` (its oldest age is computed elsewhere, see backlog.py)."""
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
        oldest_age_seconds=oldest_age_seconds,
    )


def dead_letter_depth(name: str) -> QueueDepth:
    """A DLQ's counts and the age of its oldest message (one peeked batch; free on a DLQ)."""
    counts = depth(name)
    if not counts.visible:
        return counts
    return replace(counts, oldest_age_seconds=backlog.oldest_sent(peek(name, limit=SQS_BATCH, hold_seconds=5)))


def overview() -> list[dict[str, Any]]:
    """Each work queue with its DLQ: the Flower-like view behind `GET /queues`."""
    result, counters, wanted = [], local_runtime.by_queue(), consumers.states()
    for queue in get_settings().queues.values():
        counts = depth(queue.name)
        if counts.visible:  # nothing visible, nothing waiting: no age, and no read of the records
            counts = replace(counts, oldest_age_seconds=backlog.oldest_waiting([queue.key])[queue.key])
        result.append(
            {
                "queue": queue.key,
                **counts.as_dict(),
                "max_concurrency": wanted[queue.name]["max_concurrency"],
                "configured_max_concurrency": queue.max_concurrency,
                "paused": wanted[queue.name]["paused"],
                "batch_size": queue.batch_size,
                "max_receive_count": queue.max_receive_count,
                "dead_letter": dead_letter_depth(queue.dlq_name).as_dict(),
                **local_runtime.runtime_of(queue.name, counters),
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


MAX_BODY_PREVIEW = 2000


def _attribute(message: dict[str, Any], name: str) -> str | None:
    value = message.get("MessageAttributes", {}).get(name, {}).get("StringValue")
    return str(value) if value is not None else None


def _receives_before(message: dict[str, Any], queue: QueueSettings) -> int | None:
    """How often the work queue delivered the message before it was dead-lettered (peeks do not count).

    The worker records it when it dead-letters (`receive-count`); the redrive policy moves a
    message on the receive after maxReceiveCount, so that is its count; None when unknown.
    """
    recorded = _attribute(message, "receive-count")
    if recorded is not None and recorded.isdigit():
        return int(recorded)
    return queue.max_receive_count if _attribute(message, "failure-reason") is None else None


def message_task(message: dict[str, Any]) -> tuple[str, str]:
    """The task id (the `task-id` attribute, else the envelope's) and name a queued message carries."""
    task_id, name = identity(str(message.get("Body", "")), str(message["MessageId"]))
    return _attribute(message, "task-id") or task_id, name


def dead_letters(key_or_name: str, limit: int = 50) -> dict[str, Any]:
    """Up to `limit` messages of a queue's DLQ, left in place, with why each one is there."""
    queue = queue_settings(key_or_name)
    counts = depth(queue.dlq_name)
    messages = peek(queue.dlq_name, limit=limit, hold_seconds=10) if counts.visible else []
    items = []
    for message in messages:
        body = str(message.get("Body", ""))
        task_id, name = message_task(message)
        attributes = message.get("Attributes", {})
        items.append(
            {
                "message_id": message["MessageId"],
                "task_id": task_id,
                "task": name,
                "failure_reason": _attribute(message, "failure-reason"),
                "source_queue": _attribute(message, "source-queue") or queue.name,
                "receive_count": _receives_before(message, queue),
                # Every read of the DLQ counts, this listing's peeks included: not the task's deliveries.
                "dlq_receive_count": int(attributes.get("ApproximateReceiveCount", 0)),
                "sent_at": int(attributes.get("SentTimestamp", 0)) / 1000 or None,
                "body": body[:MAX_BODY_PREVIEW],
                "body_truncated": len(body) > MAX_BODY_PREVIEW,
            }
        )
    return {"queue": queue.key, "dead_letter_queue": queue.dlq_name, **counts.as_dict(), "items": items}


def delete_dead_letter(
    key_or_name: str, message_id: str, search_limit: int = 1000, search_seconds: float = 10.0, resend: bool = False
) -> dict[str, Any] | None:
    """Delete ONE message of a queue's DLQ, found by its id; returns it, or None when not found.

    The delete uses a receipt handle from a receive made here, never one the browser saw
    earlier: every receive (the dead-letter reconciler's peek, another admin's page, the
    age of the oldest message on `/queues`) issues a new handle, and SQS may answer a
    delete with an outdated handle with success while keeping the message. While this
    search holds the messages it read (invisible for HOLD seconds), no other peek can
    receive the target, so the handle stays the latest until it is used. Everything else
    read is made visible again. The search is bounded by `search_limit` messages and
    `search_seconds`; None then means "not found among those". With `resend`, the message is
    first sent to its work queue (body and attributes), then deleted: redrive of ONE dead letter;
    a crash in between leaves it in both queues, and the task's record makes the second a no-op.
    """
    queue = queue_settings(key_or_name)
    sqs, url = client("sqs"), queue_url(queue.dlq_name)
    held: dict[str, str] = {}
    target: dict[str, Any] | None = None
    deadline = time.monotonic() + search_seconds  # well inside API Gateway's 29 s
    while target is None and len(held) < search_limit and time.monotonic() < deadline:
        batch = sqs.receive_message(
            QueueUrl=url,
            MaxNumberOfMessages=SQS_BATCH,
            VisibilityTimeout=30,
            MessageAttributeNames=["All"],
            AttributeNames=["All"],
            WaitTimeSeconds=0,
        ).get("Messages", [])
        fresh = [m for m in batch if m["MessageId"] not in held]
        if not fresh:
            break
        for message in fresh:
            if message["MessageId"] == message_id:
                target = message
            else:
                held[message["MessageId"]] = message["ReceiptHandle"]
    if target is not None:
        if resend:
            attributes = target.get("MessageAttributes") or {}
            sqs.send_message(
                QueueUrl=queue_url(queue.name),
                MessageBody=target["Body"],
                **({"MessageAttributes": attributes} if attributes else {}),
            )
        sqs.delete_message(QueueUrl=url, ReceiptHandle=target["ReceiptHandle"])
    for chunk in chunks(list(held.values())):
        sqs.change_message_visibility_batch(
            QueueUrl=url,
            Entries=[{"Id": str(i), "ReceiptHandle": handle, "VisibilityTimeout": 0} for i, handle in enumerate(chunk)],
        )
    return target
