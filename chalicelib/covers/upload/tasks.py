"""Tasks of direct uploads, and the S3 notification → task envelope translation."""

from __future__ import annotations

import math
import time
import uuid
from typing import Any

from chalicelib.covers import service as covers
from chalicelib.covers.upload import ingest as upload_ingest
from chalicelib.covers.upload.events import (
    INGEST_QUEUE,
    INGEST_TASK,
    S3Message,
    ingest_envelope,
    parse,
    parse_upload_key,
)
from chalicelib.tasks import adapters
from chalicelib.tasks.decorator import task
from chalicelib.tasks.dispatch import dispatch
from chalicelib.tasks.envelope import Envelope
from chalicelib.tasks.errors import PermanentTaskError
from chalicelib.tasks.registry import FailureInfo

INGEST_MANY_TASK = "covers.ingest_uploads"
_MANY_NAMESPACE = uuid.UUID("a4c1f0e6-2a7e-4b52-9c61-0d6f1d3e8b77")


def _upload_failed(
    exc: BaseException, task_id: str, args: list[Any], kwargs: dict[str, Any], einfo: FailureInfo
) -> None:
    """on_failure of covers.ingest_upload: the uploaded version says `failed` and why, whatever the cause."""
    target = parse_upload_key(str(args[1])) if len(args) > 1 else None
    if target is not None:
        reason = str(exc) if isinstance(exc, PermanentTaskError) else einfo.reason
        covers.mark_failed(target[0], target[1], reason)


@task(INGEST_TASK, queue=INGEST_QUEUE, max_retries=3, on_failure=_upload_failed)
def ingest_upload(bucket: str, key: str, book_id: str | None = None) -> dict[str, Any]:
    """Check, move and resize one uploaded cover (the S3 event is the message).

    `book_id` only files the record under its book; the key names the book that is changed."""
    return upload_ingest.ingest(bucket, key)


@task(INGEST_MANY_TASK, queue=INGEST_QUEUE, max_retries=3)
def ingest_uploads(objects: list[list[str]]) -> dict[str, Any]:
    """An S3 message naming several objects: one ingest task each, under their own ids."""
    envelopes = [ingest_envelope(b, k) for b, k in objects]
    signatures = [ingest_upload.s(*e.args, task_id=e.task_id, **e.kwargs) for e in envelopes]
    return {"tasks": dispatch(signatures)}


@task("covers.expire_upload", book_arg=True, max_retries=3)
def expire_upload(book_id: str, version: int, ingest_id: str, deadline: float) -> dict[str, Any]:
    """At `deadline` (epoch seconds), give up on an upload that never came.

    It is sent with a countdown to the deadline (of any length: the outbox parks it past 15
    minutes); a message that still arrives early (clocks, an old hop) is sent again, once,
    for the time that is left.
    """
    remaining = deadline - time.time()
    if remaining > 1:
        later = expire_upload.s(book_id, version, ingest_id, deadline, countdown=math.ceil(remaining))
        return {"rescheduled": dispatch([later])[0]}
    return upload_ingest.expire(book_id, version, ingest_id, deadline)


def envelope_for(message: S3Message) -> Envelope | None:
    """The task an S3 message asks for; None for the test event S3 sends when configured."""
    objects = [o for o in message.objects]
    if message.test_event or not objects:
        return None
    if len(objects) == 1:
        return ingest_envelope(objects[0].bucket, objects[0].key)
    pairs = [[o.bucket, o.key] for o in objects]
    task_id = str(uuid.uuid5(_MANY_NAMESPACE, "|".join(f"{b}/{k}" for b, k in pairs)))
    return Envelope(task_id=task_id, task=INGEST_MANY_TASK, args=[pairs])


@adapters.register
def adapt_s3_notification(body: str) -> Envelope | adapters.Skip | None:
    """S3's notification of an upload is the ingest task's message; S3's test event asks for nothing."""
    message = parse(body)
    if message is None:
        return None
    return envelope_for(message) or adapters.NOTHING_TO_DO
