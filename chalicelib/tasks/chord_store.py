"""A chord's bookkeeping in the task table (Celery keeps its chord counters in the result backend too).

One head item per chord (`chord#<id>`: member count, the members counted so far as a number
set, the callback, the dispatched flag) and one row per member (`chord#<id>#<index>`: the
member's first final result). The items carry none of the task records' index keys
(`status`, `name`, `created_bucket`, `outbox_shard`), so no task listing ever sees them.
"""

from __future__ import annotations

from pynamodb.attributes import (
    JSONAttribute,
    NumberAttribute,
    NumberSetAttribute,
    TTLAttribute,
    UnicodeAttribute,
)
from pynamodb.models import Model

from chalicelib.platform.dynamodb import TableMeta


class ChordItem(Model):
    """A chord head or one member's row (see the module docstring)."""

    class Meta(TableMeta):
        table_setting = "tasks_table"

    id = UnicodeAttribute(hash_key=True)
    # head
    total = NumberAttribute(null=True)
    done = NumberAttribute(null=True)
    members = NumberSetAttribute(null=True)
    callback = JSONAttribute(null=True)
    callback_id = UnicodeAttribute(null=True)
    dispatched = NumberAttribute(null=True)
    owner = UnicodeAttribute(null=True)
    # member row
    index = NumberAttribute(null=True)
    task_id = UnicodeAttribute(null=True)
    member_status = UnicodeAttribute(null=True)
    result = JSONAttribute(null=True)
    error = UnicodeAttribute(null=True)
    expires_at = TTLAttribute(null=True)


def head_key(chord_id: str) -> str:
    """The head item's id."""
    return f"chord#{chord_id}"


def member_key(chord_id: str, index: int) -> str:
    """The id of member `index`'s row."""
    return f"chord#{chord_id}#{index}"
