"""The transactional outbox: task records are committed with the data, SQS sends come after.

A service puts its writes and the PENDING records of the tasks they need into ONE
DynamoDB transaction (`stage`), then sends the messages (`send`). Each record carries
outbox markers (`outbox_shard`, `outbox_due`, in the sparse `outbox-due-index`) until SQS
has accepted its message (`records.mark_sent`) or a worker claims it. If the send fails or
the process dies in between, the scheduled `relay` finds the record once it is due and
sends it again. Task ids are stable and workers claim before running, so a message sent
twice runs once.
"""

from __future__ import annotations

import contextvars
import math
import random
import threading
import time
from collections import defaultdict
from collections.abc import Callable, Sequence
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass, replace
from functools import partial
from typing import TypeVar

from botocore.exceptions import BotoCoreError, ClientError
from pynamodb.exceptions import PynamoDBException

from chalicelib.platform.aws import client
from chalicelib.platform.config import get_settings
from chalicelib.platform.dynamodb import condition_failed
from chalicelib.platform.errors import ServiceUnavailable
from chalicelib.platform.observability import emit, logger
from chalicelib.platform.sqs import chunks, queue_url
from chalicelib.platform.transactions import Transaction, TransactionCancelled, transaction
from chalicelib.tasks import records
from chalicelib.tasks.envelope import Envelope
from chalicelib.tasks.models import TaskRecord
from chalicelib.tasks.registry import MAX_COUNTDOWN_SECONDS, Signature

RELAY_PAGE = 100
RELAY_SAFETY_MS = 5_000  # stop a relay run while this much invocation time is left
ACK_BATCH = 100  # TransactWriteItems limit
_UNMARK = [TaskRecord.outbox_shard.remove(), TaskRecord.outbox_due.remove(), TaskRecord.outbox_eta.remove()]


@dataclass(frozen=True)
class Outgoing:
    """One message to send: its envelope, routing key and delay."""

    envelope: Envelope
    queue: str
    countdown: int = 0
    book_id: str | None = None  # the book its record is filed under (the task's declaration says)


def outgoing(sig: Signature) -> Outgoing:
    """The message of a signature (its envelope is checked for size here, before any write)."""
    env = Envelope(
        task_id=sig.task_id, task=sig.task.name, args=list(sig.args), kwargs=dict(sig.kwargs), links=sig.links
    )
    env.encode()  # raises EnvelopeError for an oversized envelope
    return Outgoing(env, sig.task.queue, sig.countdown, sig.task.book_id(sig.args, sig.kwargs))


def stage(
    tx: Transaction, signatures: Sequence[Signature], owner: str | None, concurrent: bool = False
) -> list[Outgoing]:
    """Add the PENDING records of `signatures` to `tx`; send the result after the commit,
    or, with `concurrent`, while it commits (`Launch`): their envelopes say so (`staged`)."""
    messages = staged_messages(signatures, concurrent)
    for message in messages:
        record = records.new_record(
            message.envelope, message.queue, owner, outbox=True, countdown=message.countdown, book_id=message.book_id
        )
        tx.put(f"task:{message.envelope.task_id}", record, condition=TaskRecord.id.does_not_exist())
    return messages


def staged_messages(signatures: Sequence[Signature], concurrent: bool) -> list[Outgoing]:
    """The messages `stage` records (checked for size); `concurrent`: marked as sent before the commit."""
    messages = [outgoing(sig) for sig in signatures]
    if concurrent:
        messages = [replace(m, envelope=replace(m.envelope, staged=True)) for m in messages]
    return messages


def send(messages: Sequence[Outgoing], batch_ack: bool = False) -> int:
    """Send committed tasks; returns how many SQS accepted.

    A task with a countdown past SQS's 15 minutes is not sent: its record waits in the
    outbox's due index, and the relay sends it when it is 15 minutes from due.

    Never raises for SQS: what was not accepted stays in the outbox for the relay, so a
    caller's data and its work are safe once the transaction has committed. `batch_ack`
    takes all accepted tasks out of the outbox in one transaction: a request path saves a
    round trip per extra task; workers keep one 1-WRU write each (half the write units).
    """
    accepted = _send_all(messages)
    if batch_ack:
        _acknowledge(accepted)
    else:
        for task_id in accepted:
            _acknowledge_one(task_id)
    return len(accepted)


# The request path (`Launch`) sends a book's tasks WHILE its transaction commits, so the
# request waits for one AWS call, not three (transaction, send, acknowledgement). Chosen
# over the two other designs of issue 24: letting only the worker's claim clear the marker
# still leaves the send after the commit (two calls), and a DynamoDB Streams relay needs a
# stream, its event source mapping and a Lambda the local emulator does not run.
#
# Why it stays an outbox: the record is still committed with the data, marked, and the
# relay re-sends whatever is marked after OUTBOX_RELAY_AFTER_SECONDS. The message says
# `staged`, so a worker never creates its record: it waits for the commit (one second, then
# the rest of OUTBOX_AWAIT_COMMIT_SECONDS) and drops a message whose record never appeared
# (the transaction failed: nothing to run). The marker is cleared, off the request path, by
# one `UpdateItem`/transaction in a thread whose result nobody awaits, and ONLY when the
# commit returned within ACK_WINDOW_SECONDS of the send's start, far inside the worker's
# wait: so a message a worker dropped always belongs to a record that is either absent or
# still marked, which the relay sends again. If that thread never runs (a Lambda frozen
# and reclaimed), the worker's claim clears the marker, else the relay re-sends once.
ACK_WINDOW_SECONDS = 5.0
T = TypeVar("T")
_POOL_LOCK = threading.Lock()
_pool: ThreadPoolExecutor | None = None


def _executor() -> ThreadPoolExecutor:
    """Threads for sends and acknowledgements, made on first use (not at import: cold start)."""
    global _pool
    with _POOL_LOCK:
        if _pool is None:
            _pool = ThreadPoolExecutor(max_workers=8, thread_name_prefix="outbox")
        return _pool


def _in_thread(func: Callable[[], T]) -> Future[T]:
    # The caller's context (log keys, the benchmarks' call counters) goes with the call.
    return _executor().submit(contextvars.copy_context().run, func)


class Launch:
    """The sends of staged messages, started before the commit (see the comment above)."""

    def __init__(self, messages: Sequence[Outgoing]) -> None:
        self.messages = list(messages)
        self.started = time.monotonic()
        # One thread per queue: a book with a cover sends to `media` and `default` at once.
        by_queue = _by_queue(self.messages)
        self._sends = [_in_thread(partial(_send_queue, name, items)) for name, items in by_queue.items()]

    def committed(self) -> int:
        """After the commit: wait for the sends; acknowledge off the path; how many SQS accepted."""
        accepted = [task_id for send in self._sends for task_id in send.result()]  # never raise for SQS
        if accepted and time.monotonic() - self.started <= ACK_WINDOW_SECONDS:
            _in_thread(lambda: _acknowledge(accepted))  # not awaited: the relay is the backstop
        return len(accepted)


def _by_queue(messages: Sequence[Outgoing]) -> dict[str, list[Outgoing]]:
    """The messages to send now, by queue name (a countdown past SQS's 15 minutes waits)."""
    by_queue: dict[str, list[Outgoing]] = defaultdict(list)
    for message in messages:
        if message.countdown > MAX_COUNTDOWN_SECONDS:
            continue  # parked: its record is due for the relay 15 minutes before its ETA
        by_queue[get_settings().queues[message.queue].name].append(message)
    return by_queue


def _send_all(messages: Sequence[Outgoing]) -> list[str]:
    return [task_id for name, items in _by_queue(messages).items() for task_id in _send_queue(name, items)]


def _send_queue(queue_name: str, items: list[Outgoing]) -> list[str]:
    """Send `items` in batches; returns the task ids SQS accepted."""
    accepted: list[str] = []
    for chunk in chunks(items):
        entries = [
            {"Id": str(i), "MessageBody": m.envelope.encode(), "DelaySeconds": m.countdown} for i, m in enumerate(chunk)
        ]
        try:
            response = client("sqs").send_message_batch(QueueUrl=queue_url(queue_name), Entries=entries)
        except (ClientError, BotoCoreError) as exc:
            logger.warning(
                "SQS send failed; the outbox relay will send these tasks",
                extra={"error": str(exc), "task_ids": [m.envelope.task_id for m in chunk]},
            )
            emit("OutboxSendFailed", len(chunk))
            continue
        for entry in response.get("Failed", []):
            logger.warning(
                "SQS refused a task; the outbox relay will send it",
                extra={"task_id": chunk[int(entry["Id"])].envelope.task_id, "code": entry.get("Code")},
            )
        accepted += [chunk[int(entry["Id"])].envelope.task_id for entry in response.get("Successful", [])]
    return accepted


def _acknowledge(task_ids: Sequence[str]) -> None:
    """Take sent tasks out of the outbox: one `UpdateItem` for one task, one
    `TransactWriteItems` for up to 100. BatchWriteItem cannot update, and a whole-item put
    would overwrite a record a worker has claimed meanwhile."""
    if len(task_ids) == 1:
        _acknowledge_one(task_ids[0])
        return
    for start in range(0, len(task_ids), ACK_BATCH):
        batch = task_ids[start : start + ACK_BATCH]
        try:
            with transaction() as tx:
                for task_id in batch:
                    # No outbox condition: a worker may have claimed (and un-marked) one already;
                    # removing absent markers is harmless. The id condition never creates an item.
                    tx.update(task_id, TaskRecord(task_id), _UNMARK, condition=TaskRecord.id.exists())
        except (TransactionCancelled, ServiceUnavailable, PynamoDBException, ClientError, BotoCoreError):
            for task_id in batch:  # e.g. a record claimed at this very moment: one write each
                _acknowledge_one(task_id)


def _acknowledge_one(task_id: str) -> None:
    """If the write fails, the worker's claim or the relay takes the task out later: at worst
    it is sent once more, and runs once."""
    try:
        records.mark_sent(task_id)
    except (PynamoDBException, ClientError, BotoCoreError) as exc:
        logger.warning(
            "could not mark a sent task; it may be sent once more", extra={"task_id": task_id, "error": str(exc)}
        )


def relay(remaining_ms: Callable[[], int], now: float | None = None) -> dict[str, int]:
    """Send again every task whose record is due in the outbox, page by page.

    Stops while `RELAY_SAFETY_MS` of the invocation is left; the next run goes on where
    this one stopped (what was sent has left the index). Shards are visited from a random
    one, so a run cut short does not always starve the same shards.
    """
    settings = get_settings()
    cutoff = int(now if now is not None else time.time())
    shards = max(1, settings.outbox_shards)
    first = random.randrange(shards)
    found = relayed = 0
    for offset in range(shards):
        shard = str((first + offset) % shards)
        last_key = None
        while True:
            if remaining_ms() < RELAY_SAFETY_MS:
                logger.info("outbox relay stops: invocation time is nearly up", extra={"relayed": relayed})
                return {"due": found, "relayed": relayed, "complete": 0}
            page = TaskRecord.outbox_index.query(
                shard,
                range_key_condition=TaskRecord.outbox_due <= cutoff,
                limit=RELAY_PAGE,
                last_evaluated_key=last_key,
            )
            due = list(page)
            last_key = page.last_evaluated_key
            found += len(due)
            relayed += _relay_page(due, now if now is not None else time.time())
            if not last_key:
                break
    if relayed:
        logger.warning("outbox relay re-sent stranded tasks", extra={"due": found, "relayed": relayed})
    return {"due": found, "relayed": relayed, "complete": 1}


def resend_of(record: TaskRecord, now: float) -> Outgoing:
    """The message that sends a stranded record again: a countdown task keeps the delay it
    has left (SQS delays 15 minutes at most; a task due later checks its own time, as
    an ETA further away is not due for the relay before it is 15 minutes from its time)."""
    env = Envelope(
        task_id=record.id, task=record.name, args=list(record.args), kwargs=dict(record.kwargs), links=record.links
    )
    left = math.ceil(record.outbox_eta - now) if record.outbox_eta is not None else 0
    return Outgoing(env, record.queue, max(0, min(MAX_COUNTDOWN_SECONDS, left)))


def _relay_page(due: list[TaskRecord], now: float) -> int:
    messages: list[Outgoing] = []
    for record in due:
        # A REVOKED one is still sent: its arrival is dropped, and tells its callbacks.
        if record.status not in (records.PENDING, records.REVOKED):  # ran already (its marker outlived a lost write)
            records.mark_sent(record.id)
            continue
        if _lease(record, now):
            messages.append(resend_of(record, now))
    sent = send(messages)
    if sent:
        emit("OutboxRelayed", sent)
    return sent


# A re-send is leased before it goes out: the record's due time moves on by its age (at least
# OUTBOX_RELAY_AFTER_SECONDS, at most RELAY_BACKOFF_CAP_SECONDS), conditioned on the due time
# this run read. So a record is sent again at most once per lease, whatever the backlog: when
# its acknowledgement is lost too (DynamoDB writes failing), the next re-send waits 2x, 4x ...
# its age instead of coming every minute; when the lease itself cannot be written, nothing is
# sent; and of two relay runs that overlap, only one sends it.
RELAY_BACKOFF_CAP_SECONDS = 300


def relay_backoff(age_seconds: float) -> int:
    """Seconds until a record just re-sent is due again, from its age."""
    floor = get_settings().outbox_relay_after_seconds
    return int(min(RELAY_BACKOFF_CAP_SECONDS, max(floor, age_seconds)))


def lease_due(now: float, age_seconds: float) -> int:
    """The whole second a leased record is due again: never sooner than its backoff from `now`.

    The relay takes what is due by the whole second it runs in, so the due second is rounded
    up; `int(now) + backoff` made a 1-second lease end at once when `now` was late in its second.
    """
    return math.ceil(now + relay_backoff(age_seconds))


def _lease(record: TaskRecord, now: float) -> bool:
    age = now - record.created_at.timestamp() if record.created_at is not None else 0.0
    try:
        TaskRecord(record.id).update(
            actions=[TaskRecord.outbox_due.set(lease_due(now, age))],
            condition=TaskRecord.outbox_due == record.outbox_due,
        )
    except PynamoDBException as exc:  # taken out, claimed or leased meanwhile; or DynamoDB refuses writes
        if not condition_failed(exc):
            logger.warning("could not lease a stranded task; not sent now", extra={"task_id": record.id})
        return False
    return True
