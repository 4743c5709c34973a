"""Sending tasks: a record per task, then SQS messages in batches (or inline when eager)."""

from __future__ import annotations

import time
from collections.abc import Sequence

from chalicelib.platform.config import get_settings
from chalicelib.platform.observability import logger
from chalicelib.tasks import current, outbox, records
from chalicelib.tasks.registry import Signature


def dispatch(signatures: Sequence[Signature], owner: str | None = None) -> list[str]:
    """Dispatch task calls on behalf of `owner`; returns their ids in order.

    Each record is written PENDING with outbox markers, then the messages are sent; a
    send that fails is retried by the outbox relay, so only a failed record write raises
    (the caller's error: nothing was sent). A record that exists already is sent
    again only while it still waits in the outbox (a retried fan-out whose first send
    never happened), never once it ran.
    """
    if get_settings().tasks_eager:
        for sig in signatures:
            run_eagerly(sig, owner)
        return [sig.task_id for sig in signatures]
    messages = [outbox.outgoing(sig) for sig in signatures]  # size checks before any write
    to_send = []
    for message in messages:
        env = message.envelope
        created = records.create_pending(
            env, message.queue, owner, outbox=True, countdown=message.countdown, book_id=message.book_id
        )
        if created or records.awaits_send(env.task_id):
            to_send.append(message)
        else:
            logger.info("task id exists already; not sent again", extra={"task_id": env.task_id})
    parent = current.task_id()
    if parent is not None and to_send:
        records.add_children(parent, [m.envelope.task_id for m in to_send if m.envelope.task_id != parent])
    outbox.send(to_send)
    return [sig.task_id for sig in signatures]


def launch(messages: Sequence[outbox.Outgoing]) -> outbox.Launch | None:
    """Inside a transaction that staged `messages` (`concurrent=True`), as its last step:
    start sending them while it commits (none when eager: `deliver` runs them then)."""
    return None if get_settings().tasks_eager else outbox.Launch(messages)


def deliver(signatures: Sequence[Signature], messages: Sequence[outbox.Outgoing], owner: str | None) -> None:
    """After a commit that staged `messages`: send them, or run them inline when eager."""
    if get_settings().tasks_eager:
        for sig in signatures:
            run_eagerly(sig, owner)
        return
    outbox.send(messages, batch_ack=True)  # one acknowledgement for all


def deliver_launched(signatures: Sequence[Signature], launched: outbox.Launch | None, owner: str | None) -> bool:
    """After a commit whose sends were launched before it (`launch`): wait for them (their
    acknowledgement is off the path), or run the tasks inline when eager. True when they ran
    inline, so the caller's answer can show what they did (the service need not know why)."""
    if launched is None:
        for sig in signatures:
            run_eagerly(sig, owner)
        return True
    launched.committed()
    return False


def run_eagerly(sig: Signature, owner: str | None = None) -> None:
    """Run a task inline with the same records and retry policy (TASKS_EAGER=1)."""
    from chalicelib.tasks.executor import run_attempt  # here: the API sends, only eager mode runs

    env = outbox.outgoing(sig).envelope
    records.create_pending(env, sig.task.queue, owner, book_id=sig.task.book_id(sig.args, sig.kwargs))
    queue = get_settings().queues[sig.task.queue]
    max_attempts = min(sig.task.max_retries + 1, queue.max_receive_count)
    attempt = 1
    while True:
        outcome = run_attempt(sig.task, env, attempt, max_attempts, queue.visibility_timeout)
        if outcome.kind not in ("retry", "busy"):
            return
        time.sleep(outcome.delay)
        attempt += 1
