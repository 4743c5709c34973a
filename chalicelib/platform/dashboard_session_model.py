"""Live dashboard sessions, declared with PynamoDB: signing out deletes one, so its cookie stops working."""

from __future__ import annotations

from pynamodb.attributes import TTLAttribute, UnicodeAttribute, UTCDateTimeAttribute
from pynamodb.models import Model

from chalicelib.platform.dynamodb import TableMeta, utcnow


class DashboardSession(Model):
    """One signed-in browser. The signed cookie names it; no item (signed out) means no session.

    DynamoDB's TTL removes an item some time after `expires_at`; until then the cookie's own
    signed expiry already refuses it.
    """

    class Meta(TableMeta):
        table_setting = "dashboard_session_table"

    session_id = UnicodeAttribute(hash_key=True)
    user = UnicodeAttribute()
    created_at = UTCDateTimeAttribute(default_for_new=utcnow)
    expires_at = TTLAttribute()
