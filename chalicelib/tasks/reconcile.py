"""Bring task records in line with what sits in the dead-letter queues.

A message reaches a DLQ in one of two ways. The worker dead-letters it itself after a
final failure, and the record says FAILURE already. Or SQS's redrive policy moves it
after `maxReceiveCount` receives that never finished: a Lambda timeout, a crash or an
AWS outage during the last attempt. No code runs at that moment, so the record would
stay PENDING, STARTED or RETRY; this pass (a scheduled Lambda, and `make run`'s runner)
marks those FAILURE with the reason.
"""

from __future__ import annotations

from chalicelib.platform.config import QueueSettings, get_settings
from chalicelib.platform.observability import emit, logger
from chalicelib.platform.sqs import peek
from chalicelib.tasks import records
from chalicelib.tasks.adapters import identity, read
from chalicelib.tasks.envelope import Envelope, EnvelopeError
from chalicelib.tasks.errors import DeadLettered
from chalicelib.tasks.failures import task_failed
from chalicelib.tasks.hooks import Final, run_final_hooks
from chalicelib.tasks.registry import FailureInfo, UnknownTaskError, get_task


def _reason(message: dict[str, object], queue: QueueSettings) -> str:
    attributes = message.get("MessageAttributes") or {}
    tagged = attributes.get("failure-reason", {}) if isinstance(attributes, dict) else {}
    if isinstance(tagged, dict) and tagged.get("StringValue"):
        return str(tagged["StringValue"])
    return (
        f"moved to the dead-letter queue by the redrive policy after {queue.max_receive_count} receives "
        "without a result (the attempts timed out, crashed or met an AWS outage)"
    )


def _task_id_attribute(message: dict[str, object]) -> str | None:
    """The `task-id` the worker tagged a dead-lettered message with (its own new message id differs)."""
    attributes = message.get("MessageAttributes") or {}
    tagged = attributes.get("task-id", {}) if isinstance(attributes, dict) else {}
    value = tagged.get("StringValue") if isinstance(tagged, dict) else None
    return value if isinstance(value, str) and 0 < len(value) <= 256 else None


def reconcile_dead_letters(limit_per_queue: int = 1000) -> dict[str, int]:
    """Mark FAILURE every task whose message is in a DLQ but whose record is not final."""
    seen = marked = 0
    for queue in get_settings().queues.values():
        for message in peek(queue.dlq_name, limit=limit_per_queue, hold_seconds=10):
            seen += 1
            # The worker's tag first: a poison body has no id of its own, and the copy in the
            # DLQ has a new message id, so `identity` alone would name a second task.
            body = str(message.get("Body", ""))
            task_id, name = identity(body, str(message["MessageId"]))
            task_id = _task_id_attribute(message) or task_id
            recorded = settle_dead_letter(body, task_id, name, queue.key, _reason(message, queue))
            if recorded is not None:
                marked += 1
                logger.warning(
                    "task record marked FAILURE from its dead-lettered message",
                    extra={"task_id": task_id, "task": name, "queue": queue.name, "reason": recorded},
                )
                emit("DeadLettersReconciled", queue=queue.key)
    return {"dead_lettered": seen, "records_marked": marked}


def settle_dead_letter(body: str, task_id: str, name: str, queue_key: str, reason: str) -> str | None:
    """Make the record of a dead letter FAILURE if it is not final, then call its task's
    `on_failure` with the arguments the message carries (none for a poison body).

    The reason recorded, or None when the record was final already (or runs under a lease).
    """
    recorded = records.mark_dead_lettered(task_id, name, queue_key, reason)
    if recorded is None:
        return None
    try:
        env = read(body)
        task = get_task(env.task) if isinstance(env, Envelope) else None
    except (EnvelopeError, UnknownTaskError):
        return recorded
    if task is not None and isinstance(env, Envelope):
        task_failed(task, task_id, env.args, env.kwargs, DeadLettered(recorded), FailureInfo(recorded))
    if isinstance(env, Envelope) and env.links:  # its chord counts it, its link_error callbacks are sent
        try:
            run_final_hooks(env, Final(records.FAILURE, error=recorded))
        except Exception as exc:  # noqa: BLE001 - the record is FAILURE; a redrive would tell them again
            logger.warning("could not tell a dead letter's callbacks", extra={"task_id": task_id, "error": str(exc)})
    return recorded
