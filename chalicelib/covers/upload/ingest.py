"""The worker side of direct uploads: check what landed in S3, move it, resize it; give up on
uploads that never came.

The object is checked by its bytes, never by what the client declared: a HEAD for the size
and a ranged GET of the first bytes for the type. It is then copied server-side to the
version's `original` key, so every later step (resize, older-version cleanup, delete of the
book) sees a cover exactly like an inline one.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from pynamodb.exceptions import UpdateError

from chalicelib.covers import service as covers
from chalicelib.covers import storage, versions
from chalicelib.covers.upload.events import parse_upload_key
from chalicelib.covers.versions import Role
from chalicelib.platform.config import get_settings
from chalicelib.platform.dynamodb import condition_failed, utcnow
from chalicelib.platform.observability import logger
from chalicelib.tasks.errors import PermanentTaskError
from chalicelib.tasks.models import TaskRecord
from chalicelib.tasks.states import TaskStatus

AWAITING_UPLOAD, UPLOAD_EXPIRED = "awaiting_upload", "upload_expired"


def ingest(bucket: str, key: str) -> dict[str, Any]:
    """Turn the object a client uploaded into cover `version` of its book, with thumbnails."""
    settings = get_settings()
    target = parse_upload_key(key)
    if bucket != settings.media_bucket or target is None:
        logger.warning("S3 event for an object this stage never asked for; ignored", extra={"key": key})
        return {"skipped": f"not an upload of this stage: s3://{bucket}/{key}"}
    book_id, version = target
    book = versions.load(book_id)
    role = versions.role_of(book, version)
    if book is None or role is None:
        storage.delete(key)
        return {"skipped": "book deleted or cover replaced"}
    if versions.status_of(book, role) == versions.READY:  # a run that finished but could not record it
        storage.delete(key)
        versions.delete_older(book_id, version)
        return {"skipped": "cover already ingested"}
    try:
        return _ingest(book_id, version, role, key)
    except Exception:
        # A version replaced meanwhile does not fail (no FAILURE, no dead letter): it is of no use.
        if versions.role_of(versions.load(book_id), version) is None:
            storage.delete(key)
            return {"skipped": "book deleted or cover replaced while ingesting"}
        raise


def _ingest(book_id: str, version: int, role: Role, key: str) -> dict[str, Any]:
    settings = get_settings()
    info = storage.head(key)
    if info is None:
        return {"skipped": "the uploaded object is gone"}
    if info.size > settings.max_upload_bytes:
        raise PermanentTaskError(f"upload of {info.size} bytes exceeds the limit of {settings.max_upload_bytes}")
    detected = storage.sniff_image_type(storage.first_bytes(key))
    declared = info.content_type or "no Content-Type"
    if detected is None:
        raise PermanentTaskError(f"the upload is not a JPEG, PNG or WebP image (declared {declared})")
    if detected != info.content_type:
        logger.warning("upload declared one type and is another; using its bytes' type", extra={"declared": declared})
    storage.copy(key, storage.original_key(book_id, version), detected)
    if not versions.set_status(book_id, version, role, "pending"):
        storage.delete(key)
        return {"skipped": "book deleted or cover replaced"}
    result = covers.resize(book_id, version)  # a wrong or hostile image fails here, as an inline one does
    storage.delete(key)  # kept until now, so a transient failure can simply run again
    return {**result, "upload": {"bytes": info.size, "declared": declared, "detected": detected}}


def expire(book_id: str, version: int, ingest_task_id: str, deadline: float) -> dict[str, Any]:
    """Give up on an upload that never came: the book says `upload_expired`, the PENDING
    ingest record FAILURE. A late upload (the policy was valid when it started) still wins."""
    when = datetime.fromtimestamp(deadline, UTC).isoformat(timespec="seconds")
    reason = f"no upload arrived before {when}"
    # Wherever the version sits: the book's cover, or an upload beside a ready cover (which stays).
    expired = any(
        versions.set_status(book_id, version, role, UPLOAD_EXPIRED, reason, only_from=AWAITING_UPLOAD)
        for role in versions.Role
    )
    try:
        TaskRecord(ingest_task_id).update(
            actions=[
                TaskRecord.status.set(TaskStatus.FAILURE),
                TaskRecord.error.set(reason),
                TaskRecord.finished_at.set(utcnow()),
                TaskRecord.updated_at.set(utcnow()),
            ],
            condition=TaskRecord.status == TaskStatus.PENDING,  # never touch an ingest that started
        )
    except UpdateError as exc:
        if not condition_failed(exc):
            raise
    return {"expired": expired}
