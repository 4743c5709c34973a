"""The SQS consumer behind each `@app.on_sqs_message` handler.

Contract with the event source mapping (works with or without ReportBatchItemFailures):
messages that were handled are deleted here, at once; if any message was not handled
the invocation raises, so Lambda returns only those to the queue. A handler never
returns `batchItemFailures`, which a mapping without that response type would ignore,
deleting the whole batch.
"""

from __future__ import annotations

from collections import defaultdict
from typing import Any

from aws_lambda_powertools.utilities.batch import BatchProcessor, EventType
from aws_lambda_powertools.utilities.data_classes.sqs_event import SQSRecord

from chalicelib import deadline, upload_events, upload_jobs
from chalicelib.config import QueueSettings
from chalicelib.observability import emit, logger, record_cold_start
from chalicelib.queues import change_visibility, dead_letter, delete_messages, queue_settings
from chalicelib.tasks import records
from chalicelib.tasks.envelope import EnvelopeError, decode, identity
from chalicelib.tasks.executor import run_attempt
from chalicelib.tasks.registry import UnknownTaskError, get_task


class TaskDeferred(Exception):
    """The message stays in the queue and comes back after its visibility timeout."""


class BatchIncomplete(Exception):
    """Some messages of the batch were not handled; Lambda returns them to the queue."""


def handle_record(record: SQSRecord) -> str:
    """Handle one message; raise TaskDeferred to leave it in the queue."""
    queue = queue_settings(record.event_source_arn)
    receives = int(record.attributes.approximate_receive_count or 1)
    s3_message = upload_events.parse(record.body)  # S3 sends its own JSON, never a poison message
    try:
        env = decode(record.body) if s3_message is None else upload_jobs.envelope_for(s3_message)
        if env is None:
            logger.info("S3 test event or a message with no upload; nothing to do", extra={"queue": queue.name})
            return "ignored"
        task = get_task(env.task)
    except (EnvelopeError, UnknownTaskError) as exc:
        return _poison(record, queue, f"poison message: {exc}")
    max_attempts = min(task.max_retries + 1, queue.max_receive_count)
    outcome = run_attempt(task, env, receives, max_attempts, queue.visibility_timeout)
    if outcome.kind == "failure":
        dead_letter(queue, record.body, outcome.reason, env.task_id)
        return "dead-lettered"
    if outcome.kind in ("retry", "busy"):
        change_visibility(queue.name, record.receipt_handle, outcome.delay)
        raise TaskDeferred(f"{env.task_id} {outcome.kind} in {outcome.delay}s")
    return outcome.kind


def _poison(record: SQSRecord, queue: QueueSettings, reason: str) -> str:
    """Dead-letter a message that cannot run, leaving a FAILURE record that says why."""
    task_id, name = identity(record.body, record.message_id)
    logger.error(
        "poison message moved to the dead-letter queue",
        extra={"reason": reason, "message_id": record.message_id, "queue": queue.name, "task_id": task_id},
    )
    dead_letter(queue, record.body, reason, task_id)
    records.record_poison(task_id, name, queue.key, reason)
    emit("PoisonMessages", queue=queue.key)
    return "dead-lettered"


def consume(event: dict[str, Any], context: Any) -> dict[str, int]:
    """Process a Lambda SQS event; delete what was handled, raise if anything was not."""
    record_cold_start(getattr(context, "function_name", "local"))
    processor = BatchProcessor(event_type=EventType.SQS, raise_on_entire_batch_failure=False)
    with deadline.invocation(context), processor(records=event.get("Records", []), handler=handle_record):
        processor.process()
    by_queue: dict[str, list[str]] = defaultdict(list)
    for message in processor.success_messages:  # the raw Lambda records
        by_queue[message["eventSourceARN"].rsplit(":", 1)[-1]].append(message["receiptHandle"])
    for name, handles in by_queue.items():
        delete_messages(name, handles)
    failed = len(processor.fail_messages)
    if failed:
        raise BatchIncomplete(f"{failed} of {len(processor.records)} messages return to the queue")
    return {"handled": len(processor.success_messages)}
