"""A message no adapter reads (an upload notification, its adapter gone) is dead-lettered by the
real worker over the emulator, never dropped (the adapters themselves: tests/unit/test_message_adapters.py)."""

from __future__ import annotations

import uuid
from typing import Any

import pytest
from helpers import s3_notification

from chalicelib.covers.upload.events import upload_key
from chalicelib.tasks import adapters


def test_a_worker_without_the_adapter_dead_letters_uploads_instead_of_dropping_them(
    chalice_client: Any, settings: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Fail visibly, keep the message: the poison path (DLQ with its reason, a FAILURE record),
    from where a redrive replays it once the adapter is registered again."""
    from chalicelib.ops.queues import delete_dead_letter
    from chalicelib.platform.sqs import peek
    from chalicelib.tasks.models import TaskRecord

    monkeypatch.setattr(adapters, "_ADAPTERS", [])
    body = s3_notification(upload_key(str(uuid.uuid4()), 1), bucket=f"b-{uuid.uuid4().hex}")
    event = chalice_client.events.generate_sqs_event(message_bodies=[body], queue_name=settings.media.name)
    message_id = event["Records"][0]["messageId"] = str(uuid.uuid4())  # chalice's is a constant
    assert chalice_client.lambda_.invoke("media_worker", event).payload == {"batchItemFailures": []}
    record = TaskRecord.get(f"sqs-{message_id}", consistent_read=True)
    assert (record.status, record.name) == ("FAILURE", "<unreadable>")
    (dead,) = [m for m in peek(settings.media.dlq_name) if m["Body"] == body]
    try:
        reason = dead["MessageAttributes"]["failure-reason"]["StringValue"]
        assert reason.startswith("poison message: unsupported envelope version")
    finally:
        delete_dead_letter(settings.media.key, dead["MessageId"])
