"""The emulator's SQS keeps SQS's semantics after its constant-cost sends and receives
(devtools/emulator/sqs.py): counts, delays and visibility timeouts as before."""

from __future__ import annotations

import time
import uuid
from collections.abc import Iterator
from typing import Any

import pytest


@pytest.fixture
def queue(aws: Any) -> Iterator[str]:
    sqs = aws("sqs")
    url: str = sqs.create_queue(QueueName=f"sqs-test-{uuid.uuid4().hex[:8]}")["QueueUrl"]
    yield url
    sqs.delete_queue(QueueUrl=url)


def _counts(sqs: Any, url: str) -> dict[str, int]:
    names = [
        "ApproximateNumberOfMessages",
        "ApproximateNumberOfMessagesNotVisible",
        "ApproximateNumberOfMessagesDelayed",
    ]
    attributes = sqs.get_queue_attributes(QueueUrl=url, AttributeNames=names)["Attributes"]
    return {name: int(attributes[name]) for name in names}


def test_counts_say_what_is_visible_in_flight_and_delayed(aws: Any, queue: str) -> None:
    sqs = aws("sqs")
    sqs.send_message_batch(
        QueueUrl=queue,
        Entries=[
            {"Id": "a", "MessageBody": "a"},
            {"Id": "b", "MessageBody": "b"},
            {"Id": "later", "MessageBody": "later", "DelaySeconds": 120},
        ],
    )
    received = sqs.receive_message(QueueUrl=queue, MaxNumberOfMessages=1, VisibilityTimeout=120, WaitTimeSeconds=5)[
        "Messages"
    ]
    assert len(received) == 1
    assert _counts(sqs, queue) == {
        "ApproximateNumberOfMessages": 1,
        "ApproximateNumberOfMessagesNotVisible": 1,
        "ApproximateNumberOfMessagesDelayed": 1,
    }


def test_delays_and_visibility_timeouts_hold(aws: Any, queue: str) -> None:
    sqs = aws("sqs")
    sqs.send_message(QueueUrl=queue, MessageBody="later", DelaySeconds=120)
    sqs.send_message(QueueUrl=queue, MessageBody="now")
    # Long polls where a message is expected: a short poll may sample no message on SQS (and
    # LocalStack's visibility clock ticks about once a second).
    (first,) = sqs.receive_message(QueueUrl=queue, MaxNumberOfMessages=10, VisibilityTimeout=2, WaitTimeSeconds=5)[
        "Messages"
    ]
    assert first["Body"] == "now"  # the delayed one is not due
    assert "Messages" not in sqs.receive_message(QueueUrl=queue, MaxNumberOfMessages=10)  # in flight
    time.sleep(2)
    (again,) = sqs.receive_message(QueueUrl=queue, MaxNumberOfMessages=10, WaitTimeSeconds=10)["Messages"]
    assert again["MessageId"] == first["MessageId"]  # visible again after its timeout
    sqs.delete_message(QueueUrl=queue, ReceiptHandle=again["ReceiptHandle"])
    assert _counts(sqs, queue)["ApproximateNumberOfMessagesDelayed"] == 1
