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

    `pk` is `fanout#<book id>` (the dealer of segments), `fanout#<book id>#<n>` (segment n's
    position and counts) or `ratelimit#ses`; one item per chain keeps the writes per recipient
    low (one update per round of up to 500 mails).
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
    segments = NumberAttribute(null=True)  # segments dealt (the fan-out's own item)
    last_segment = JSONAttribute(null=True)  # the last one dealt, sent again by a redelivered dealer
    first_segment = JSONAttribute(null=True)  # segment 0, which the fan-out's first task mails itself
    failures = ListAttribute(of=UnicodeAttribute, null=True)
    retry_pending = JSONAttribute(null=True)
    tat = NumberAttribute(null=True)
    created_at = UTCDateTimeAttribute(default_for_new=utcnow)
    updated_at = UTCDateTimeAttribute(default=utcnow)
    expires_at = TTLAttribute(null=True)
