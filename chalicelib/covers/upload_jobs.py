"""Tasks of direct uploads, and the S3 notification → task envelope translation."""

from __future__ import annotations

import math
import time
import uuid
from typing import Any

from chalicelib.covers import upload_ingest
from chalicelib.covers.upload_events import INGEST_TASK, S3Message, ingest_task_id, parse
from chalicelib.tasks import adapters
from chalicelib.tasks.decorator import task
from chalicelib.tasks.dispatch import dispatch
from chalicelib.tasks.envelope import Envelope

INGEST_MANY_TASK = "covers.ingest_uploads"
_MANY_NAMESPACE = uuid.UUID("a4c1f0e6-2a7e-4b52-9c61-0d6f1d3e8b77")


@task(INGEST_TASK, max_retries=3)
def ingest_upload(bucket: str, key: str) -> dict[str, Any]:
    """Check, move and resize one uploaded cover (the S3 event is the message)."""
    return upload_ingest.ingest(bucket, key)


@task(INGEST_MANY_TASK, max_retries=3)
def ingest_uploads(objects: list[list[str]]) -> dict[str, Any]:
    """An S3 message naming several objects: one ingest task each, under their own ids."""
    signatures = [ingest_upload.s(b, k, task_id=ingest_task_id(b, k)) for b, k in objects]
    return {"tasks": dispatch(signatures)}


@task("covers.expire_upload", max_retries=3)
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
        obj = objects[0]
        return Envelope(task_id=ingest_task_id(obj.bucket, obj.key), task=INGEST_TASK, args=[obj.bucket, obj.key])
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
