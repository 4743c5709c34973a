"""The subscribers table (one partition per author), declared with PynamoDB."""

from __future__ import annotations

from pynamodb.attributes import (
    NumberAttribute,
    UnicodeAttribute,
    UTCDateTimeAttribute,
)
from pynamodb.models import Model

from chalicelib.platform.dynamodb import TableMeta, utcnow


class Subscriber(Model):
    """An email address that wants to hear of new books by an author (double opt-in).

    `status` is pending → confirmed → unsubscribed (→ confirmed again only through a new
    confirmation link); pending → confirmation_failed when the mail cannot be sent (→ pending
    again when subscribed again). Only a SHA-256 of the live confirmation token is kept.
    """

    class Meta(TableMeta):
        table_setting = "subscribers_table"

    author_key = UnicodeAttribute(hash_key=True)
    email = UnicodeAttribute(range_key=True)
    author = UnicodeAttribute()
    owner = UnicodeAttribute()
    status = UnicodeAttribute(default="pending")
    confirm_hash = UnicodeAttribute(null=True)
    confirm_expires = NumberAttribute(null=True)
    confirm_sent_at = NumberAttribute(null=True)
    confirm_error = UnicodeAttribute(null=True)  # why the last confirmation mail failed
    used_hash = UnicodeAttribute(null=True)
    confirmed_at = UTCDateTimeAttribute(null=True)
    unsubscribed_at = UTCDateTimeAttribute(null=True)
    created_at = UTCDateTimeAttribute(default_for_new=utcnow)
