"""S3 notification messages as the media worker reads them (pure parsing, no AWS)."""

from __future__ import annotations

import json
import uuid
from typing import Any

import pytest

from chalicelib.covers.upload.events import (
    INGEST_TASK,
    identity,
    ingest_task_id,
    parse,
    parse_upload_key,
    upload_key,
)

pytestmark = pytest.mark.unit  # pure logic: no AWS endpoint is started for these tests

BOOK = str(uuid.UUID(int=7))


def _record(key: str, bucket: str = "media", event: str = "ObjectCreated:Post") -> dict[str, Any]:
    return {
        "eventVersion": "2.1",
        "eventSource": "aws:s3",
        "eventName": event,
        "s3": {"bucket": {"name": bucket, "arn": f"arn:aws:s3:::{bucket}"}, "object": {"key": key, "size": 12}},
    }


def test_test_event_is_recognised() -> None:
    body = json.dumps({"Service": "Amazon S3", "Event": "s3:TestEvent", "Time": "t", "Bucket": "media"})
    message = parse(body)
    assert message is not None and message.test_event and message.objects == ()
    assert identity(body) is None


def test_records_are_read_with_their_keys_decoded() -> None:
    body = json.dumps({"Records": [_record(f"uploads/{BOOK}/v3".replace("/", "%2F"))]})
    message = parse(body)
    assert message is not None and not message.test_event
    (obj,) = message.objects
    assert (obj.bucket, obj.key, obj.size) == ("media", f"uploads/{BOOK}/v3", 12)
    assert identity(body) == (ingest_task_id("media", f"uploads/{BOOK}/v3"), INGEST_TASK)


@pytest.mark.parametrize(
    "body",
    [
        "not json",
        "[]",
        json.dumps({"v": 1, "id": "t", "task": "covers.resize", "args": [], "Records": []}),
        json.dumps({"Records": [{"eventSource": "aws:sqs"}]}),
        json.dumps({"Records": []}),
    ],
)
def test_other_bodies_are_not_s3_messages(body: str) -> None:
    assert parse(body) is None


def test_only_object_created_records_count() -> None:
    body = json.dumps({"Records": [_record(f"uploads/{BOOK}/v1", event="ObjectRemoved:Delete")]})
    message = parse(body)
    assert message is not None and message.objects == ()


def test_upload_keys_round_trip_and_nothing_else_parses() -> None:
    assert parse_upload_key(upload_key(BOOK, 12)) == (BOOK, 12)
    for key in (f"covers/{BOOK}/v1/original", f"uploads/{BOOK}/v0", f"uploads/{BOOK}/v1/x", "uploads/abc/v1"):
        assert parse_upload_key(key) is None


def test_the_ingest_id_is_stable_per_object_and_differs_per_version() -> None:
    first = ingest_task_id("media", upload_key(BOOK, 1))
    assert first == ingest_task_id("media", upload_key(BOOK, 1))
    assert first != ingest_task_id("media", upload_key(BOOK, 2))
    assert first != ingest_task_id("other", upload_key(BOOK, 1))


def test_a_message_with_several_objects_becomes_one_fan_out_task() -> None:
    from chalicelib.covers.upload.tasks import INGEST_MANY_TASK, envelope_for

    keys = [upload_key(BOOK, 1), upload_key(BOOK, 2)]
    message = parse(json.dumps({"Records": [_record(k) for k in keys]}))
    assert message is not None
    env = envelope_for(message)
    assert env is not None and env.task == INGEST_MANY_TASK and env.args == [[["media", k] for k in keys]]
    single = parse(json.dumps({"Records": [_record(keys[0])]}))
    assert single is not None
    one = envelope_for(single)
    assert one is not None and (one.task, one.task_id) == (INGEST_TASK, ingest_task_id("media", keys[0]))
