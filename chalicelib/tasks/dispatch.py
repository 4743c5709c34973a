"""Sending tasks: a record per task, then SQS messages in batches (or inline when eager)."""

from __future__ import annotations

import time
from collections import defaultdict
from collections.abc import Sequence

from chalicelib.aws import client
from chalicelib.config import get_settings
from chalicelib.observability import logger
from chalicelib.queues import chunks, queue_url
from chalicelib.tasks import records
from chalicelib.tasks.envelope import Envelope
from chalicelib.tasks.executor import run_attempt
from chalicelib.tasks.registry import Signature


class DispatchError(RuntimeError):
    """SQS refused some messages; their records say FAILURE."""


def _envelope(sig: Signature) -> Envelope:
    return Envelope(task_id=sig.task_id, task=sig.task.name, args=list(sig.args), kwargs=dict(sig.kwargs))


def dispatch(signatures: Sequence[Signature], owner: str | None = None) -> list[str]:
    """Dispatch task calls on behalf of `owner`; returns their ids in order."""
    if get_settings().tasks_eager:
        for sig in signatures:
            run_eagerly(sig, owner)
        return [sig.task_id for sig in signatures]
    by_queue: dict[str, list[tuple[Signature, Envelope]]] = defaultdict(list)
    for sig in signatures:
        env = _envelope(sig)
        env.encode()  # raises EnvelopeError for an oversized envelope before anything is written
        if records.create_pending(env, sig.task.queue, owner):
            by_queue[sig.task.queue].append((sig, env))
        else:
            logger.info("task id exists already; not sent again", extra={"task_id": sig.task_id})
    for key, items in by_queue.items():
        _send(get_settings().queues[key].name, items)
    return [sig.task_id for sig in signatures]


def _send(queue_name: str, items: list[tuple[Signature, Envelope]]) -> None:
    failed: list[str] = []
    for chunk in chunks(items):
        entries = [
            {"Id": str(i), "MessageBody": env.encode(), "DelaySeconds": sig.countdown}
            for i, (sig, env) in enumerate(chunk)
        ]
        response = client("sqs").send_message_batch(QueueUrl=queue_url(queue_name), Entries=entries)
        for entry in response.get("Failed", []):
            task_id = chunk[int(entry["Id"])][1].task_id
            records.mark_failure(task_id, None, f"could not enqueue: {entry.get('Code')}: {entry.get('Message')}")
            failed.append(task_id)
    if failed:
        raise DispatchError(f"SQS refused {len(failed)} task(s): {', '.join(failed)}")


def run_eagerly(sig: Signature, owner: str | None = None) -> None:
    """Run a task inline with the same records and retry policy (TASKS_EAGER=1)."""
    env = _envelope(sig)
    records.create_pending(env, sig.task.queue, owner)
    queue = get_settings().queues[sig.task.queue]
    max_attempts = min(sig.task.max_retries + 1, queue.max_receive_count)
    attempt = 1
    while True:
        outcome = run_attempt(sig.task, env, attempt, max_attempts, queue.visibility_timeout)
        if outcome.kind not in ("retry", "busy"):
            return
        time.sleep(outcome.delay)
        attempt += 1
