"""Pause, resume and resize a queue's consumers: Flower's pool control, for SQS + Lambda.

Deployed, a queue's consumer is its Lambda event source mapping: pause and resume set its
`Enabled`, and the maximum concurrency is its `ScalingConfig.MaximumConcurrency` (2-1,000,
Lambda's own bounds), by UpdateEventSourceMapping. The wanted state is also kept as a control
item of the task table (`control#consumer#<queue name>`), which is what the local runner of
`make run` obeys (it has no mapping to update) and what `/queues` shows when Lambda has no
mapping for the queue. Every change is written to the audit log (ops/audit.py).
"""

from __future__ import annotations

from typing import Any

from botocore.exceptions import BotoCoreError, ClientError
from pynamodb.attributes import BooleanAttribute, NumberAttribute, UnicodeAttribute, UTCDateTimeAttribute
from pynamodb.models import Model

from chalicelib.ops import audit
from chalicelib.platform.aws import client
from chalicelib.platform.config import get_settings
from chalicelib.platform.dynamodb import TableMeta, utcnow
from chalicelib.platform.errors import ValidationFailed
from chalicelib.platform.observability import logger
from chalicelib.platform.sqs import queue_arn, queue_settings
from chalicelib.tasks.control import PREFIX

MIN_CONCURRENCY, MAX_CONCURRENCY = 2, 1000  # Lambda's bounds for ScalingConfig.MaximumConcurrency


class ConsumerState(Model):
    """The wanted state of one queue's consumers."""

    class Meta(TableMeta):
        table_setting = "tasks_table"

    id = UnicodeAttribute(hash_key=True)
    paused = BooleanAttribute(default=False)
    max_concurrency = NumberAttribute(null=True)
    changed_by = UnicodeAttribute(null=True)
    changed_at = UTCDateTimeAttribute(null=True)


def _key(queue_name: str) -> str:
    return f"{PREFIX}consumer#{queue_name}"


def state(queue_name: str) -> dict[str, Any]:
    """`paused` and `max_concurrency` of a queue's consumers (the configured maximum by default)."""
    configured = queue_settings(queue_name).max_concurrency
    try:
        item = ConsumerState.get(_key(queue_name))
    except ConsumerState.DoesNotExist:
        return {"paused": False, "max_concurrency": configured}
    return {"paused": bool(item.paused), "max_concurrency": int(item.max_concurrency or configured)}


def states() -> dict[str, dict[str, Any]]:
    """Every queue's consumer state by queue name, in one BatchGetItem."""
    queues = list(get_settings().queues.values())
    found = {item.id: item for item in ConsumerState.batch_get([_key(q.name) for q in queues])}
    result = {}
    for queue in queues:
        item = found.get(_key(queue.name))
        result[queue.name] = {
            "paused": bool(item.paused) if item else False,
            "max_concurrency": int(item.max_concurrency or queue.max_concurrency) if item else queue.max_concurrency,
        }
    return result


def concurrency(body: Any) -> int:
    """The `max_concurrency` of a request body: an integer from 2 to 1,000 (else a 422)."""
    value = body.get("max_concurrency") if isinstance(body, dict) else None
    if isinstance(value, bool) or not isinstance(value, int) or not MIN_CONCURRENCY <= value <= MAX_CONCURRENCY:
        message = f"an integer from {MIN_CONCURRENCY} to {MAX_CONCURRENCY}"
        raise ValidationFailed("invalid max_concurrency", [{"field": "max_concurrency", "message": message}])
    return value


def set_paused(key_or_name: str, paused: bool, user: str) -> dict[str, Any]:
    """Disable (pause) or enable (resume) the queue's consumers."""
    queue = queue_settings(key_or_name)
    current = state(queue.name)
    ConsumerState(
        _key(queue.name),
        paused=paused,
        max_concurrency=current["max_concurrency"],
        changed_by=user,
        changed_at=utcnow(),
    ).save()
    mappings = _update_mappings(queue.name, Enabled=not paused)
    audit.record(user, "pause" if paused else "resume", f"queue {queue.key}", f"{mappings} event source mapping(s)")
    return {"queue": queue.key, "paused": paused, "max_concurrency": current["max_concurrency"], "mappings": mappings}


def set_concurrency(key_or_name: str, value: int, user: str) -> dict[str, Any]:
    """Set the queue's maximum concurrency (2-1,000)."""
    queue = queue_settings(key_or_name)
    current = state(queue.name)
    ConsumerState(
        _key(queue.name), paused=current["paused"], max_concurrency=value, changed_by=user, changed_at=utcnow()
    ).save()
    mappings = _update_mappings(queue.name, ScalingConfig={"MaximumConcurrency": value})
    detail = f"{current['max_concurrency']} -> {value}; {mappings} event source mapping(s)"
    audit.record(user, "max concurrency", f"queue {queue.key}", detail)
    return {"queue": queue.key, "paused": current["paused"], "max_concurrency": value, "mappings": mappings}


def _update_mappings(queue_name: str, **change: Any) -> int:
    """Apply `change` to every event source mapping of the queue; how many were updated.

    None found (the local runner, an emulator without Lambda) is not an error: the control
    item is what the local runner reads.
    """
    lam = client("lambda")
    try:
        pages = lam.get_paginator("list_event_source_mappings").paginate(EventSourceArn=queue_arn(queue_name))
        mappings = [m for page in pages for m in page.get("EventSourceMappings", [])]
    except (ClientError, BotoCoreError) as exc:
        logger.info("no event source mappings to update", extra={"queue": queue_name, "error": str(exc)})
        return 0
    for mapping in mappings:
        lam.update_event_source_mapping(UUID=mapping["UUID"], **change)
    return len(mappings)
