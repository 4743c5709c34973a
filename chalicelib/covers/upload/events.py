"""S3 event notifications of direct cover uploads: recognising and reading them (no AWS calls).

S3 sends its own JSON to the media queue, not a task envelope. `covers/upload/tasks.py` registers an
adapter built on this module with the task framework (`tasks/adapters.py`): the worker asks it
first, so an S3 message never takes the poison path, and the dead-letter reconciler asks it
too, so a dead-lettered S3 message is matched to its task record.
"""

from __future__ import annotations

import json
import re
import uuid
from dataclasses import dataclass
from typing import Any
from urllib.parse import unquote_plus

from chalicelib.tasks.envelope import Envelope

UPLOADS_PREFIX = "uploads/"
INGEST_TASK = "covers.ingest_upload"
#: S3 sends its events to this queue itself (the bucket notification), so the task runs there.
INGEST_QUEUE = "media"
_KEY_RE = re.compile(r"^uploads/([0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12})/v([1-9][0-9]{0,8})$")
_NAMESPACE = uuid.UUID("0b6f4c53-55a4-4c8e-a3a5-4f1f2a9f6c21")


@dataclass(frozen=True)
class UploadedObject:
    """One object an S3 ObjectCreated record names."""

    bucket: str
    key: str
    size: int
    etag: str


@dataclass(frozen=True)
class S3Message:
    """An S3 notification message: the test event S3 sends on configuration, or records."""

    test_event: bool
    objects: tuple[UploadedObject, ...] = ()


def upload_key(book_id: str, version: int) -> str:
    """Where the client uploads cover `version` of a book (the POST policy pins it)."""
    return f"{UPLOADS_PREFIX}{book_id}/v{version}"


def parse_upload_key(key: str) -> tuple[str, int] | None:
    """(book id, cover version) of an upload key, or None for any other key."""
    match = _KEY_RE.match(key)
    return (match.group(1), int(match.group(2))) if match else None


def ingest_task_id(bucket: str, key: str) -> str:
    """The task id of ingesting one upload: known when the URL is issued, the same for every
    duplicate S3 event of that object, so a duplicate resizes once (the key carries the version)."""
    return str(uuid.uuid5(_NAMESPACE, f"{bucket}/{key}"))


def ingest_envelope(bucket: str, key: str) -> Envelope:
    """The ingest task of one uploaded object. The book id rides in `kwargs` so the task record
    is filed under its book (the first argument is the bucket, not a book)."""
    target = parse_upload_key(key)
    kwargs = {"book_id": target[0]} if target is not None else {}
    return Envelope(task_id=ingest_task_id(bucket, key), task=INGEST_TASK, args=[bucket, key], kwargs=kwargs)


def _load(body: str) -> dict[str, Any] | None:
    try:
        data = json.loads(body)
    except (TypeError, ValueError):
        return None
    return data if isinstance(data, dict) else None


def _dict(value: Any) -> dict[str, Any]:
    return value if isinstance(value, dict) else {}


def _object(record: Any) -> UploadedObject | None:
    if not isinstance(record, dict) or record.get("eventSource") != "aws:s3":
        return None
    if not str(record.get("eventName", "")).startswith("ObjectCreated:"):
        return None
    s3 = _dict(record.get("s3"))
    bucket, obj = _dict(s3.get("bucket")), _dict(s3.get("object"))
    name, key = bucket.get("name"), obj.get("key")
    if not isinstance(name, str) or not isinstance(key, str):
        return None
    size = obj.get("size")
    return UploadedObject(
        bucket=name,
        key=unquote_plus(key),  # S3 URL-encodes keys in events
        size=size if isinstance(size, int) and not isinstance(size, bool) else 0,
        etag=str(obj.get("eTag", "")),
    )


def parse(body: str) -> S3Message | None:
    """The S3 message in `body`, or None when the body is not one (e.g. a task envelope)."""
    data = _load(body)
    if data is None:
        return None
    if data.get("Event") == "s3:TestEvent" and data.get("Service") == "Amazon S3":
        return S3Message(test_event=True)
    records = data.get("Records")
    if "v" in data or not isinstance(records, list) or not records:
        return None
    if not all(isinstance(r, dict) and r.get("eventSource") == "aws:s3" for r in records):
        return None
    objects = tuple(o for o in (_object(r) for r in records) if o is not None)
    return S3Message(test_event=False, objects=objects)


def identity(body: str) -> tuple[str, str] | None:
    """(task id, task name) of an S3 message naming one upload, for records of dead letters."""
    message = parse(body)
    if message is None or len(message.objects) != 1:
        return None
    obj = message.objects[0]
    return ingest_task_id(obj.bucket, obj.key), INGEST_TASK
