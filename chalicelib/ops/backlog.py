"""How long the oldest work of each queue has waited: `oldest_age_seconds` without CloudWatch.

SQS has no attribute for it (ApproximateAgeOfOldestMessage exists only as a CloudWatch
metric, one-minute granularity, and needs cloudwatch:GetMetricData). Peeking a *work*
queue is not an option either: every ReceiveMessage raises the message's receive count,
which is the task's attempt number and counts towards maxReceiveCount, so looking would
eat retries and could push a task into its DLQ. So:

- a work queue's age is that of its oldest task whose message is visible now: the sparse
  waiting index of the task records (`queued_at`, the moment the message became visible:
  sent, plus its countdown or retry backoff), one Query of one item per shard. A delayed task
  (an upload's expiry) counts only from its due time, and an ingest record waiting for its
  upload not at all (its message does not exist yet);
- a DLQ's age is read from the messages themselves (SentTimestamp of a peek of at most one
  batch): DLQs have no redrive policy, so a receive there costs nothing.
"""

from __future__ import annotations

import time
from collections.abc import Iterable
from typing import Any

from chalicelib.tasks.models import TaskRecord
from chalicelib.tasks.records import waiting_keys


def oldest_waiting(queue_keys: Iterable[str], now: float | None = None) -> dict[str, int | None]:
    """Seconds since the oldest message of each queue became visible (None: none waits).

    Costs one Query returning at most one item per shard and queue, whatever the table holds.
    """
    now = time.time() if now is None else now
    ages: dict[str, int | None] = {}
    for queue in queue_keys:
        visible_since = [
            int(record.queued_at)
            for key in waiting_keys(queue)
            for record in TaskRecord.waiting_index.query(
                key, TaskRecord.queued_at <= int(now), scan_index_forward=True, limit=1
            )
            if record.queued_at is not None
        ]
        ages[queue] = max(0, int(now - min(visible_since))) if visible_since else None
    return ages


def oldest_sent(messages: Iterable[dict[str, Any]], now: float | None = None) -> int | None:
    """Seconds since the earliest SentTimestamp among peeked messages (None when there are none)."""
    stamps = [int(m.get("Attributes", {}).get("SentTimestamp", 0)) for m in messages]
    stamps = [s for s in stamps if s > 0]
    if not stamps:
        return None
    now = time.time() if now is None else now
    return max(0, int(now - min(stamps) / 1000))
