"""A book's fan-out progress and the shared SES rate schedule, declared with PynamoDB."""

from __future__ import annotations

from pynamodb.attributes import (
    JSONAttribute,
    ListAttribute,
    NumberAttribute,
    TTLAttribute,
    UnicodeAttribute,
    UTCDateTimeAttribute,
)
from pynamodb.models import Model

from chalicelib.platform.dynamodb import TableMeta, utcnow


class MailState(Model):
    """Mail bookkeeping that is not a task: a fan-out's progress and counts, the SES rate bucket.

    `pk` is `fanout#<book id>` or `ratelimit#ses`; one item per fan-out keeps the writes
    per recipient low (one update per bulk call of up to 50).
    """

    class Meta(TableMeta):
        table_setting = "mail_table"

    pk = UnicodeAttribute(hash_key=True)
    owner = UnicodeAttribute(null=True)
    root_task = UnicodeAttribute(null=True)
    page = UnicodeAttribute(null=True)
    position = JSONAttribute(null=True)
    next_page = UnicodeAttribute(null=True)
    complete = NumberAttribute(default=0)
    mailed = NumberAttribute(default=0)
    failed = NumberAttribute(default=0)
    retrying = NumberAttribute(default=0)
    pages = NumberAttribute(default=0)
    failures = ListAttribute(of=UnicodeAttribute, null=True)
    retry_pending = JSONAttribute(null=True)
    tat = NumberAttribute(null=True)
    created_at = UTCDateTimeAttribute(default_for_new=utcnow)
    updated_at = UTCDateTimeAttribute(default=utcnow)
    expires_at = TTLAttribute(null=True)
