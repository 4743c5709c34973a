"""A task's `rate_limit`, shared by every concurrent invocation (Celery's is per worker).

Each run takes a slot in the task's GCRA schedule (`platform/ratelimit.py`, one item in the
task table). A slot less than WAIT_IN_PLACE_SECONDS away is waited for in the invocation. A
later slot is kept for the message: a NEW message carrying the slot is sent with the delay
left (at most SQS's 15 minutes, then again), and the old one is reported handled, so Lambda
deletes it. Hiding the old message instead (ChangeMessageVisibility) would raise its receive
count, and a busy day would push rate-limited tasks into the DLQ by `maxReceiveCount` without
a single failure; the task record is not touched either (no claim: `attempts` stays).
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable
from dataclasses import replace

from chalicelib.platform import ratelimit
from chalicelib.platform.aws import client
from chalicelib.platform.sqs import queue_url
from chalicelib.tasks.control import TaskRateSlots
from chalicelib.tasks.envelope import Envelope
from chalicelib.tasks.registry import MAX_COUNTDOWN_SECONDS, Task

WAIT_IN_PLACE_SECONDS = 1.5
#: A put-off message is due this long before its slot, and waits the rest in place, so that
#: the queue's delivery lag does not make it late.
EARLY_SECONDS = 0.5
#: A message that brings its slot back this late still runs in it; later, the slot is stale
#: (running it now could bunch with the runs of later slots) and a new one is taken.
LATE_SLOT_SECONDS = 0.5


def admit(task: Task, env: Envelope, receives: int, clock: Callable[[], float] = time.time) -> float | None:
    """None: run now (a near slot was waited for). Else the reserved slot to put the message off to.

    The slot a message carries counts only on its first receive: a retry takes a new one, so
    every run, retries included, is within the rate.
    """
    assert task.rate_limit is not None
    now = clock()
    if env.slot is not None and receives <= 1 and env.slot >= now - LATE_SLOT_SECONDS:
        start = env.slot
    else:
        _, start = ratelimit.reserve(TaskRateSlots(task.name), 1, ratelimit.parse_rate(task.rate_limit), clock=clock)
    if start <= now + WAIT_IN_PLACE_SECONDS:
        ratelimit.wait_until(start)
        return None
    return start


def put_off(queue_name: str, env: Envelope, slot: float, clock: Callable[[], float] = time.time) -> int:
    """Send the task again for its slot (due a little early: it waits the rest in place)."""
    delay = max(0, min(MAX_COUNTDOWN_SECONDS, math.floor(slot - clock() - EARLY_SECONDS)))
    send_again(queue_name, replace(env, slot=round(slot, 3)), delay)
    return delay


def send_again(queue_name: str, env: Envelope, delay: int) -> None:
    """The task as a NEW message due in `delay` seconds; the caller reports the old one handled.

    A new message starts at receive 1: putting a task off this way (its rate slot, or a fresh
    invocation for its time limit) never pushes it toward the DLQ's `maxReceiveCount`.
    """
    client("sqs").send_message(QueueUrl=queue_url(queue_name), MessageBody=env.encode(), DelaySeconds=delay)
