"""Who did what, when, from the dashboard or the admin API: the controls' audit log.

One item per UTC day in the task table (`control#audit#<day>`), each action appended to its
`entries` list by one UpdateItem (list_append), so the log needs no new table or grant and
a week is read by one BatchGetItem of 7 keys. A day holds at most MAX_PER_DAY entries (an
item stays far below DynamoDB's 400 KB); past that, actions are still logged to CloudWatch
with the same fields, and the day's item says how many it missed. Kept AUDIT_DAYS days (TTL).
"""

from __future__ import annotations

import json
from datetime import timedelta
from typing import Any

from pynamodb.attributes import ListAttribute, NumberAttribute, TTLAttribute, UnicodeAttribute
from pynamodb.exceptions import UpdateError
from pynamodb.expressions.condition import size
from pynamodb.models import Model

from chalicelib.platform.dynamodb import TableMeta, condition_failed, utcnow
from chalicelib.platform.observability import logger
from chalicelib.tasks.control import PREFIX

MAX_PER_DAY = 1000
AUDIT_DAYS = 90
MAX_DETAIL = 500


class AuditDay(Model):
    """The controls used on one UTC day."""

    class Meta(TableMeta):
        table_setting = "tasks_table"

    id = UnicodeAttribute(hash_key=True)
    entries = ListAttribute(of=UnicodeAttribute, null=True)  # one JSON object per action
    missed = NumberAttribute(null=True)
    expires_at = TTLAttribute(null=True)


def _key(day: str) -> str:
    return f"{PREFIX}audit#{day}"


def record(user: str, action: str, target: str, detail: str = "") -> None:
    """Append one action to today's log (and to the logs, always)."""
    now = utcnow()
    entry = {"at": now.isoformat(), "user": user[:200], "action": action[:60], "target": target[:300]}
    entry["detail"] = detail[:MAX_DETAIL]
    logger.info("audit", extra={"audit": entry})
    item = AuditDay(_key(now.date().isoformat()))
    try:
        item.update(
            actions=[
                AuditDay.entries.set((AuditDay.entries | []).append([json.dumps(entry, ensure_ascii=False)])),
                AuditDay.expires_at.set(now + timedelta(days=AUDIT_DAYS)),
            ],
            condition=AuditDay.entries.does_not_exist() | (size(AuditDay.entries) < MAX_PER_DAY),
        )
    except UpdateError as exc:
        if not condition_failed(exc):
            raise
        item.update(actions=[AuditDay.missed.add(1)])


def recent(days: int = 7) -> list[dict[str, Any]]:
    """The entries of the last `days` days, newest first."""
    today = utcnow().date()
    keys = [_key((today - timedelta(days=d)).isoformat()) for d in range(max(1, min(days, AUDIT_DAYS)))]
    entries: list[dict[str, Any]] = []
    for day in AuditDay.batch_get(keys):
        entries += [json.loads(str(e)) for e in day.entries or []]
    return sorted(entries, key=lambda e: str(e.get("at")), reverse=True)
