"""The API side of direct uploads: a presigned S3 POST for a new cover version.

The API never touches the bytes. It points the book at a new cover version that is
`awaiting_upload`, signs a POST policy that pins the key, the Content-Type and the size,
and schedules the expiry. S3's event notification to the media queue does the rest
(`covers/upload/tasks.py`, `upload_ingest`).
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from typing import Any

from chalicelib.books.models import Book
from chalicelib.books.schemas import CoverUpload
from chalicelib.covers import storage, versions
from chalicelib.covers.upload import tasks as upload_tasks
from chalicelib.covers.upload.events import INGEST_QUEUE, ingest_envelope, upload_key
from chalicelib.covers.upload.ingest import AWAITING_UPLOAD
from chalicelib.platform.config import get_settings
from chalicelib.platform.errors import PayloadTooLarge
from chalicelib.platform.transactions import Transaction
from chalicelib.tasks import records
from chalicelib.tasks.envelope import Envelope
from chalicelib.tasks.models import TaskRecord
from chalicelib.tasks.registry import Signature


@dataclass(frozen=True)
class Upload:
    """A started upload: the form the client posts, its ingest task, what to dispatch, and the
    book's update (the same change `begin` made to the book object: field → value, None removes it)."""

    form: storage.UploadForm
    ingest: Envelope
    signatures: list[Signature] = field(default_factory=list)
    changes: dict[str, Any] = field(default_factory=dict)


def begin(book: Book, spec: CoverUpload, size_field: str) -> Upload:
    """Point `book` (saved by the caller) at a new cover version the client uploads to S3."""
    settings = get_settings()
    if spec.size > settings.max_upload_bytes:
        raise PayloadTooLarge(
            f"cover is larger than {settings.max_upload_bytes} bytes",
            [{"field": size_field, "message": f"at most {settings.max_upload_bytes} bytes"}],
        )
    version = versions.next_version(book)
    changes = _wait_beside(book, version) if book.cover_status == versions.READY else _replace(book, version)
    key = upload_key(book.id, version)
    form = storage.presigned_post(key, spec.content_type, settings.max_upload_bytes, settings.upload_ttl_seconds)
    ingest = ingest_envelope(settings.media_bucket, key)
    signatures: list[Signature] = []
    if not settings.tasks_eager:  # eager tasks ignore countdowns: the expiry would run at once
        wait = settings.upload_ttl_seconds + settings.upload_expiry_margin_seconds
        signatures.append(
            upload_tasks.expire_upload.s(
                book.id,
                version,
                ingest.task_id,
                time.time() + wait,
                countdown=wait,  # any length: past 15 minutes it waits in the outbox (tasks/outbox.py)
            )
        )
    return Upload(form=form, ingest=ingest, signatures=signatures, changes=changes)


def _wait_beside(book: Book, version: int) -> dict[str, Any]:
    """A ready cover stays served: the new version waits beside it until it is ready itself."""
    book.upload_version, book.upload_status, book.upload_error = version, AWAITING_UPLOAD, None
    return {"upload_version": version, "upload_status": AWAITING_UPLOAD, "upload_error": None}


def _replace(book: Book, version: int) -> dict[str, Any]:
    """No cover to keep (none, or one not ready): the new version is the cover."""
    book.cover_version, book.cover_key = version, storage.original_key(book.id, version)
    book.cover_status, book.cover_error, book.thumbnails = AWAITING_UPLOAD, None, None
    book.upload_version = book.upload_status = book.upload_error = None
    return {
        "cover_version": version,
        "cover_key": book.cover_key,
        "cover_status": AWAITING_UPLOAD,
        "cover_error": None,
        "thumbnails": None,
        "upload_version": None,
        "upload_status": None,
        "upload_error": None,
    }


def stage_pending(tx: Transaction, upload: Upload, owner: str) -> None:
    """Add the ingest task's PENDING record to the book's transaction, so the client can follow
    it before S3 sends the event. Not in the outbox: S3, not the relay, sends its message."""
    record = records.new_record(upload.ingest, INGEST_QUEUE, owner, queued=False)
    tx.put(f"task:{upload.ingest.task_id}", record, condition=TaskRecord.id.does_not_exist())
