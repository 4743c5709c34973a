"""How long the oldest work of each queue has waited: `oldest_age_seconds` without CloudWatch.

SQS has no attribute for it (ApproximateAgeOfOldestMessage exists only as a CloudWatch
metric, one-minute granularity, and needs cloudwatch:GetMetricData). Peeking a *work*
queue is not an option either: every ReceiveMessage raises the message's receive count,
which is the task's attempt number and counts towards maxReceiveCount, so looking would
eat retries and could push a task into its DLQ. So:

- a work queue's age is that of its oldest unfinished task still waiting in the queue
  (PENDING or RETRY), read from the task records' status index (oldest first, bounded);
- a DLQ's age is read from the messages themselves (SentTimestamp of a peek of at most one
  batch): DLQs have no redrive policy, so a receive there costs nothing.
"""

from __future__ import annotations

import time
from collections.abc import Iterable
from typing import Any

from chalicelib.tasks.models import TaskRecord
from chalicelib.tasks.records import PENDING, RETRY

# Records read per status before giving up on a queue that has no waiting task among the
# oldest ones (e.g. 1M PENDING mails on `default` and none on `media`): bounded cost per call.
MAX_RECORDS_PER_STATUS = 200
WAITING_STATUSES = (PENDING, RETRY)


def oldest_waiting(queue_keys: Iterable[str], now: float | None = None) -> dict[str, int | None]:
    """Seconds since the oldest PENDING/RETRY task of each queue was created (None: none found)."""
    wanted = set(queue_keys)
    oldest: dict[str, float] = {}
    for status in WAITING_STATUSES:
        found: set[str] = set()
        rows = TaskRecord.status_index.query(status, scan_index_forward=True, limit=MAX_RECORDS_PER_STATUS)
        for record in rows:
            queue = record.queue
            if queue in wanted and queue not in found:
                found.add(queue)
                created = record.created_at.timestamp()
                oldest[queue] = min(created, oldest.get(queue, created))
            if found == wanted:
                break
    now = time.time() if now is None else now
    return {key: (max(0, int(now - oldest[key])) if key in oldest else None) for key in wanted}


def oldest_sent(messages: Iterable[dict[str, Any]], now: float | None = None) -> int | None:
    """Seconds since the earliest SentTimestamp among peeked messages (None when there are none)."""
    stamps = [int(m.get("Attributes", {}).get("SentTimestamp", 0)) for m in messages]
    stamps = [s for s in stamps if s > 0]
    if not stamps:
        return None
    now = time.time() if now is None else now
    return max(0, int(now - min(stamps) / 1000))
