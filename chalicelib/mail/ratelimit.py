"""One SES send rate for every default-queue consumer: a shared schedule in DynamoDB.

A generic cell rate algorithm (GCRA): one item holds the theoretical arrival time (`tat`)
of the next free slot. Sending n mails takes the slot [max(tat, now), +n/rate) with a
conditional write on the old value, then waits for its start. Whatever the number of
concurrent workers, the calls are spaced so the sent mails never exceed the rate over
any stretch longer than one call. Powertools has no distributed rate limiter, and the
event source mapping's maximum concurrency cannot express "mails per second" (a call
carries up to 50), hence this small module.
"""

from __future__ import annotations

import random
import time
from functools import lru_cache

from pynamodb.exceptions import PutError, UpdateError

from chalicelib.mail.models import MailState
from chalicelib.platform.aws import client
from chalicelib.platform.config import get_settings
from chalicelib.platform.dynamodb import condition_failed
from chalicelib.tasks.errors import TransientTaskError

BUCKET = "ratelimit#ses"
MAX_ATTEMPTS = 25
_last: dict[str, float] = {}


@lru_cache(maxsize=1)
def _account_rate() -> float:
    return float(client("ses").get_send_quota()["MaxSendRate"])


def send_rate() -> float:
    """Mails per second for the whole account: SES_MAX_SEND_RATE, else SES's own quota."""
    configured = get_settings().ses_max_send_rate
    return configured if configured > 0 else max(_account_rate(), 1.0)


def chunk_size() -> int:
    """Destinations per bulk call: SES allows 50; never more than one second of the rate."""
    return max(1, min(50, int(send_rate())))


def reserve(count: int, latest_start: float) -> tuple[bool, float]:
    """Reserve a slot for `count` mails starting by `latest_start` (epoch seconds).

    Returns (True, start) when reserved, or (False, earliest start) when the next free
    slot begins too late (nothing is reserved then). The schedule's last value this
    container wrote is tried first, so an uncontended reservation is one write, no read.
    """
    interval = count / send_rate()
    known = _last.get("tat")
    for _ in range(MAX_ATTEMPTS):
        if known is None:
            try:
                known = float(MailState.get(BUCKET, consistent_read=True).tat or 0.0)
            except MailState.DoesNotExist:
                known = -1.0  # no schedule yet
        now = time.time()
        start = max(known, now)
        if start > latest_start:
            return False, start
        try:
            if known < 0:
                MailState(BUCKET, tat=start + interval).save(condition=MailState.pk.does_not_exist())
            else:
                MailState(BUCKET).update(
                    actions=[MailState.tat.set(start + interval)],
                    condition=MailState.tat == known if known > 0 else MailState.pk.exists(),
                )
        except (PutError, UpdateError) as exc:
            if not condition_failed(exc):
                raise
            known = None  # another worker moved the schedule: read it
            time.sleep(random.uniform(0.002, 0.02))
            continue
        _last["tat"] = start + interval
        return True, start
    raise TransientTaskError("the SES rate schedule is contended; will retry")


def wait_until(start: float) -> None:
    """Sleep until a reserved slot begins."""
    delay = start - time.time()
    if delay > 0:
        time.sleep(delay)
