"""The SQS consumer behind each `@app.on_sqs_message` handler.

Contract with the event source mapping, chosen by `settings.report_batch_item_failures`
(exported to the functions from `.chalice/config.json`; the deploy paths give the
mappings the matching `FunctionResponseTypes`, and `make deploy` refuses a mismatch):

- true (default): the mapping has `ReportBatchItemFailures`. The handler returns
  `{"batchItemFailures": [{"itemIdentifier": <message id>}, ...]}` and never raises for a
  failed message; Lambda deletes the others and leaves those in the queue.
- false (legacy, for a mapping without that response type, which would read any return
  as "all handled" and delete the whole batch): the handler deletes the handled messages
  itself and raises, so Lambda deletes nothing and the rest come back.
"""

from __future__ import annotations

import math
import time
from collections import defaultdict
from typing import Any

from aws_lambda_powertools.utilities.batch import BatchProcessor, EventType, process_partial_response
from aws_lambda_powertools.utilities.data_classes.sqs_event import SQSRecord
from botocore.exceptions import BotoCoreError, ClientError

from chalicelib.platform import deadline
from chalicelib.platform.config import QueueSettings, get_settings
from chalicelib.platform.observability import emit, logger, record_cold_start
from chalicelib.platform.ratelimit import RateContended
from chalicelib.platform.sqs import change_visibility, dead_letter, delete_messages, queue_settings
from chalicelib.tasks import history, records, throttle
from chalicelib.tasks.adapters import identity, read
from chalicelib.tasks.backoff import MIN_DELAY_SECONDS
from chalicelib.tasks.envelope import Envelope, EnvelopeError
from chalicelib.tasks.errors import POISON_REASON, TaskExpired
from chalicelib.tasks.executor import run_attempt
from chalicelib.tasks.failures import task_failed
from chalicelib.tasks.registry import FailureInfo, Task, UnknownTaskError, get_task
from chalicelib.tasks.states import AttemptOutcome


class TaskDeferred(Exception):
    """The message stays in the queue and comes back after its visibility timeout."""


class BatchIncomplete(Exception):
    """Some messages of the batch were not handled; Lambda returns them to the queue."""


def handle_record(record: SQSRecord, context: Any = None) -> str:
    """Handle one message; raise TaskDeferred to leave it in the queue."""
    history.set_invocation(
        getattr(context, "aws_request_id", None),
        getattr(context, "log_group_name", None),
        getattr(context, "log_stream_name", None),
    )
    queue = queue_settings(record.event_source_arn)
    receives = int(record.attributes.approximate_receive_count or 1)
    try:
        env = read(record.body)  # an envelope, or another producer's message its adapter reads (S3's)
        if not isinstance(env, Envelope):
            logger.info(
                "a message that asks for nothing (S3's test event, or no upload); ignored", extra={"queue": queue.name}
            )
            return "ignored"
        task = get_task(env.task)
    except (EnvelopeError, UnknownTaskError) as exc:
        return _poison(record, queue, f"{POISON_REASON}: {exc}")
    age = _age_seconds(record)
    if age is not None and task.expired(age):
        return _expired(queue, task, env, age)
    remaining = _remaining_seconds(context)
    if task.time_limit is not None and remaining is not None and remaining < task.time_limit:
        return _hand_on(record, queue, env, task, remaining)
    if task.rate_limit is not None and _put_off(record, queue, env, task, receives):
        return "rate-limited"
    max_attempts = min(task.max_retries + 1, queue.max_receive_count)
    outcome = run_attempt(task, env, receives, max_attempts, queue.visibility_timeout)
    if outcome.kind is AttemptOutcome.FAILURE:
        dead_letter(queue, record.body, outcome.reason, env.task_id, receives=receives)
        return "dead-lettered"
    if outcome.kind is AttemptOutcome.ABSENT:
        return _await_commit(record, queue, env, age)
    if outcome.kind in (AttemptOutcome.RETRY, AttemptOutcome.BUSY):
        change_visibility(queue.name, record.receipt_handle, outcome.delay)
        raise TaskDeferred(f"{env.task_id} {outcome.kind} in {outcome.delay}s")
    return outcome.kind


def _await_commit(record: SQSRecord, queue: QueueSettings, env: Envelope, age: float | None) -> str:
    """A staged message came before its record's commit: look again shortly; past the bound,
    the request's transaction failed (or lost its race), and the message goes unrun.

    One second first (the commit is in flight: the usual case), then the rest of the
    bound, so at most three receives are spent whatever the bound. A commit that lands
    later still runs: the request did not acknowledge it, and the relay sends it again.
    """
    bound = get_settings().outbox_await_commit_seconds
    if age is not None and age >= bound:
        logger.warning(
            "no record committed for a staged message; its request was aborted, not run",
            extra={"task_id": env.task_id, "task": env.task, "queue": queue.name, "age": round(age, 1)},
        )
        emit("OutboxOrphanDropped", task=env.task)
        return "aborted"
    delay = MIN_DELAY_SECONDS if age is None or age < MIN_DELAY_SECONDS else math.ceil(bound - age) + 1
    change_visibility(queue.name, record.receipt_handle, max(MIN_DELAY_SECONDS, delay))
    raise TaskDeferred(f"{env.task_id}: its record is not committed yet; again in {delay}s")


def _hand_on(record: SQSRecord, queue: QueueSettings, env: Envelope, task: Task, remaining: float) -> str:
    """Too little time left for the task's `time_limit` (starting it would risk the function's
    timeout, which fails the whole invocation): it goes to a fresh invocation as a NEW message.

    Deferring this message instead spent a receive each time: in a batch of several long
    fan-out pages, the ones behind a long page used up `maxReceiveCount` and went to the DLQ,
    and the fan-out stalled (the 100,000-subscriber bench).
    """
    try:
        throttle.send_again(queue.name, env, MIN_DELAY_SECONDS)
    except (ClientError, BotoCoreError) as exc:
        change_visibility(queue.name, record.receipt_handle, MIN_DELAY_SECONDS)  # a receive counts, only now
        raise TaskDeferred(f"{env.task_id}: not handed on ({exc})") from None
    logger.info(
        "too little time left for the task's time_limit; sent again for a fresh invocation",
        extra={"task_id": env.task_id, "time_limit": task.time_limit, "remaining": round(remaining, 1)},
    )
    emit("TaskHandedOn", task=task.name)
    return "handed-on"


def _put_off(record: SQSRecord, queue: QueueSettings, env: Envelope, task: Task, receives: int) -> bool:
    """True when the task is over its rate and was sent again for its slot (this message then goes)."""
    try:
        slot = throttle.admit(task, env, receives)
        if slot is None:
            return False
        delay = throttle.put_off(queue.name, env, slot)
    except (RateContended, ClientError, BotoCoreError) as exc:
        # Only when DynamoDB or SQS fail: the message comes back in a second (a receive counts).
        change_visibility(queue.name, record.receipt_handle, MIN_DELAY_SECONDS)
        raise TaskDeferred(f"{env.task_id}: rate limit not applied ({exc})") from None
    logger.info("task over its rate limit; sent again for its slot", extra={"task_id": env.task_id, "delay": delay})
    emit("TaskRateLimited", task=task.name)
    return True


def _age_seconds(record: SQSRecord) -> float | None:
    """Seconds since the message was first sent (SQS SentTimestamp), if known."""
    sent = record.attributes.sent_timestamp
    return time.time() - int(sent) / 1000 if sent else None


def _remaining_seconds(context: Any) -> float | None:
    """Seconds left in this invocation, if the context knows."""
    remaining = getattr(context, "get_remaining_time_in_millis", None)
    return remaining() / 1000 if callable(remaining) else None


def _expired(queue: QueueSettings, task: Task, env: Envelope, age: float) -> str:
    """Do not run a task past its `expires`: a FAILURE record says so, and the message goes."""
    reason = f"expired: sent {age:.0f}s ago, the task expires after {task.expires}s"
    logger.warning("task expired; not run", extra={"task_id": env.task_id, "task": task.name, "queue": queue.name})
    if records.record_poison(env.task_id, task.name, queue.key, reason):
        task_failed(task, env.task_id, env.args, env.kwargs, TaskExpired(reason), FailureInfo(reason))
    emit("TaskExpired", task=task.name)
    return "expired"


def _poison(record: SQSRecord, queue: QueueSettings, reason: str) -> str:
    """Dead-letter a message that cannot run, leaving a FAILURE record that says why."""
    task_id, name = identity(record.body, record.message_id)
    logger.error(
        "poison message moved to the dead-letter queue",
        extra={"reason": reason, "message_id": record.message_id, "queue": queue.name, "task_id": task_id},
    )
    dead_letter(queue, record.body, reason, task_id, receives=int(record.attributes.approximate_receive_count or 1))
    records.record_poison(task_id, name, queue.key, reason)
    emit("PoisonMessages", queue=queue.key)
    return "dead-lettered"


def consume(event: dict[str, Any], context: Any) -> dict[str, Any]:
    """Process a Lambda SQS event; returns the failed message ids (or raises, legacy mode)."""
    record_cold_start(getattr(context, "function_name", "local"))
    # raise_on_entire_batch_failure=False: a batch where every message failed is reported
    # like any other partial failure, not turned into a Lambda error.
    processor = BatchProcessor(event_type=EventType.SQS, raise_on_entire_batch_failure=False)
    # Every line of the invocation names its request id, as Powertools' inject_lambda_context does:
    # the dashboard finds a task's lines in CloudWatch Logs by it (dashboard/task_logs.py).
    request_id = getattr(context, "aws_request_id", None)
    if request_id:
        logger.thread_safe_append_keys(function_request_id=request_id)
    try:
        with deadline.invocation(context):
            response = process_partial_response(
                event=event, record_handler=lambda record: handle_record(record, context), processor=processor
            )
    finally:
        if request_id:
            logger.thread_safe_remove_keys(["function_request_id"])
    if get_settings().report_batch_item_failures:
        return dict(response)
    failed = {str(item["itemIdentifier"]) for item in response["batchItemFailures"]}
    return _delete_handled_and_raise(event.get("Records", []), failed)


def _delete_handled_and_raise(lambda_records: list[dict[str, Any]], failed: set[str]) -> dict[str, Any]:
    """Legacy mode: delete what was handled, then raise if anything was not.

    Receipt handles come from the event's own records, matched by message id.
    """
    by_queue: dict[str, list[str]] = defaultdict(list)
    for record in lambda_records:
        if record["messageId"] not in failed:
            by_queue[record["eventSourceARN"].rsplit(":", 1)[-1]].append(record["receiptHandle"])
    for name, handles in by_queue.items():
        delete_messages(name, handles)
    if failed:
        raise BatchIncomplete(f"{len(failed)} of {len(lambda_records)} messages return to the queue")
    return {"batchItemFailures": []}
