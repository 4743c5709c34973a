"""Idempotency-Key records, declared with PynamoDB."""

from __future__ import annotations

from pynamodb.attributes import (
    JSONAttribute,
    NumberAttribute,
    TTLAttribute,
    UnicodeAttribute,
    UTCDateTimeAttribute,
)
from pynamodb.models import Model

from chalicelib.platform.dynamodb import TableMeta, utcnow


class IdempotencyRecord(Model):
    """The first answer to a request sent with an `Idempotency-Key`, replayed to retries.

    `key` is a hash of (user, route, client key); `fingerprint` a hash of the request, so
    reusing a key for a different request is detected. Written in the same transaction as
    the work it answers for; expires by TTL.
    """

    class Meta(TableMeta):
        table_setting = "idempotency_table"

    key = UnicodeAttribute(hash_key=True)
    owner = UnicodeAttribute()
    scope = UnicodeAttribute()
    fingerprint = UnicodeAttribute()
    status_code = NumberAttribute()
    response = JSONAttribute()
    created_at = UTCDateTimeAttribute(default_for_new=utcnow)
    expires_at = TTLAttribute()
