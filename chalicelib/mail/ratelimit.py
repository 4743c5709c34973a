"""One SES send rate for every default-queue consumer: a shared schedule in DynamoDB.

The schedule is the generic cell rate algorithm of `platform/ratelimit.py`, kept in the
mail table's `ratelimit#ses` item. Sending n mails takes the slot [max(tat, now), +n/rate),
then waits for its start, so the sent mails never exceed the rate over any stretch longer than
one call. The event source mapping's maximum concurrency cannot express "mails per second"
(a call carries up to 50).
"""

from __future__ import annotations

from functools import lru_cache

from pynamodb.exceptions import PutError, UpdateError

from chalicelib.mail.models import MailState
from chalicelib.platform import ratelimit
from chalicelib.platform.aws import client
from chalicelib.platform.config import get_settings
from chalicelib.platform.dynamodb import condition_failed
from chalicelib.tasks.errors import TransientTaskError

BUCKET = "ratelimit#ses"
wait_until = ratelimit.wait_until


class _SesSlots:
    """The SES schedule's `tat` in the mail table."""

    key = BUCKET

    def read(self) -> float | None:
        try:
            return float(MailState.get(BUCKET, consistent_read=True).tat or 0.0)
        except MailState.DoesNotExist:
            return None

    def swap(self, old: float | None, new: float) -> bool:
        try:
            if old is None:
                MailState(BUCKET, tat=new).save(condition=MailState.pk.does_not_exist())
            else:
                condition = MailState.tat == old if old > 0 else MailState.tat.does_not_exist()
                MailState(BUCKET).update(actions=[MailState.tat.set(new)], condition=condition)
        except (PutError, UpdateError) as exc:
            if condition_failed(exc):
                return False
            raise
        return True


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
    slot begins too late (nothing is reserved then).
    """
    try:
        return ratelimit.reserve(_SesSlots(), count, send_rate(), latest_start)
    except ratelimit.RateContended as exc:
        raise TransientTaskError(f"{exc}; will retry") from None
