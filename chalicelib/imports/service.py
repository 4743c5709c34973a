"""Bulk import: `POST /imports` saves the items and one start task; a chord creates the books.

The request stays small and atomic whatever the count: the checked items go to S3 first,
then one transaction holds the import record, its start task (outbox) and the
Idempotency-Key answer. The start task sends one member task per valid book as a chord
(`tasks/canvas.py`, ids derived from the import id, so a retried start sends nothing
twice); each member creates its book through `books.service.create_book` under an
Idempotency-Key of its own (a retried member never makes two books); the chord's callback
writes the report once.
"""

from __future__ import annotations

import json
import uuid
from datetime import timedelta
from typing import Any

from botocore.exceptions import BotoCoreError, ClientError
from pynamodb.exceptions import DoesNotExist, UpdateError

from chalicelib.books import service as books
from chalicelib.books.schemas import BookCreate
from chalicelib.covers import storage
from chalicelib.imports.models import ImportItem
from chalicelib.imports.schemas import ImportCreate, check_item
from chalicelib.platform import idempotency
from chalicelib.platform.config import get_settings
from chalicelib.platform.dynamodb import condition_failed, utcnow
from chalicelib.platform.errors import Conflict, DomainError, InternalError, NotFound, ServiceUnavailable
from chalicelib.platform.observability import logger
from chalicelib.platform.schemas import validate
from chalicelib.platform.transactions import TransactionCancelled, transaction
from chalicelib.tasks import outbox
from chalicelib.tasks.canvas import chord, chord_progress
from chalicelib.tasks.dispatch import deliver
from chalicelib.tasks.errors import PermanentTaskError
from chalicelib.tasks.registry import get_task
from chalicelib.tasks.states import TaskStatus

# Named, not imported: `chalicelib.app_tasks` declares these tasks and sits above the domains.
START_TASK, CREATE_TASK, FINISH_TASK = "imports.start", "imports.create_book", "imports.finish"
REPORT_PAGE = 50  # outcomes per report item: 50 x (an upload form or 10 clipped errors) stays far below 400 KB
MAX_ITEMS_BYTES = 16 * 1024 * 1024
RUNNING, FINISHED = "running", "finished"


class ItemRefused(PermanentTaskError):
    """The book service refused the item (a 4xx): reported, never retried."""


def items_key(import_id: str) -> str:
    """Where the checked items of an import wait for its start task."""
    return f"imports/{import_id}/items.json"


def _expiry() -> Any:
    return utcnow() + timedelta(days=get_settings().task_ttl_days)


def start_import(owner: str, body: Any, client_key: str | None = None) -> dict[str, Any]:
    """Check every item, save them and the import with its start task; answer 202's body."""
    data = validate(ImportCreate, body)
    request = json.dumps(body, sort_keys=True, separators=(",", ":")).encode()
    claim: idempotency.Claim[dict[str, Any]] | None = idempotency.claim_for(client_key, owner, "POST /imports", request)
    if (
        stored := idempotency.replay(claim)
    ) is not None:  # read first: the items are written to S3 before the transaction
        return stored
    items: list[dict[str, Any]] = []
    for index, raw in enumerate(data.books):
        book, errors = check_item(raw)
        items.append({"index": index, "errors": errors} if book is None else {"index": index, "book": _plain(book)})
    invalid = sum(1 for item in items if "errors" in item)
    import_id = str(uuid.uuid4())
    key = items_key(import_id)
    storage.put(key, json.dumps({"owner": owner, "items": items}).encode(), "application/json")
    start = get_task(START_TASK).s(import_id)
    response = {
        "import": {"id": import_id, "status": RUNNING, "total": len(items)},
        "invalid": [{"index": item["index"], "errors": item["errors"]} for item in items if "errors" in item],
        "tasks": [start.task_id],
    }
    record = ImportItem(import_id, owner=owner, status=RUNNING, total=len(items), invalid=invalid, expires_at=_expiry())
    try:
        with transaction() as tx:
            idempotency.stage(tx, claim, response, 202)
            tx.put("import", record, condition=ImportItem.id.does_not_exist())
            messages = outbox.stage(tx, [start], owner)
    except TransactionCancelled as exc:
        _discard(key)
        if idempotency.LABEL in exc.failed:
            return idempotency.after_conflict(claim)
        raise Conflict("the import could not be saved (an id was taken); retry", []) from None
    except Exception:
        _discard(key)
        raise
    deliver([start], messages, owner)
    return response


def _plain(book: BookCreate) -> dict[str, Any]:
    return book.model_dump(mode="json", exclude_none=True)


def _discard(key: str) -> None:
    try:
        storage.delete(key)
    except (ClientError, BotoCoreError):
        logger.warning("could not delete the items of an import that was not saved", extra={"key": key})


def _items(import_id: str) -> dict[str, Any]:
    document: dict[str, Any] = json.loads(storage.get(items_key(import_id), MAX_ITEMS_BYTES))
    return document


def send_members(import_id: str) -> dict[str, Any]:
    """The start task: one member per valid book, as a chord whose callback writes the report."""
    document = _items(import_id)
    owner = document["owner"]
    create = get_task(CREATE_TASK)
    members = [create.s(import_id, item["index"], owner, item["book"]) for item in document["items"] if "book" in item]
    started = chord(members, get_task(FINISH_TASK).s(import_id)).apply_async(owner, chord_id=import_id)
    return {"chord": started.id, "members": len(members), "callback": started.callback_id}


def create_member(import_id: str, index: int, owner: str, book: dict[str, Any]) -> dict[str, Any]:
    """One member: create the book as `POST /books` would, under a key of its own (so once)."""
    try:
        created = books.create_book(owner, BookCreate.model_validate(book), f"import:{import_id}:{index}")
    except DomainError as exc:
        if isinstance(exc, ServiceUnavailable | InternalError):
            raise  # an outage: the member is retried, not refused
        details = "; ".join(f"{f.get('field')}: {f.get('message')}" for f in exc.fields[:5])
        raise ItemRefused(f"{exc.message} ({details})" if details else exc.message) from None
    outcome: dict[str, Any] = {"book_id": created["book"]["id"]}
    if "upload" in created:
        outcome["upload"] = created["upload"]
    return outcome


def _member_outcome(index: int, member: dict[str, Any]) -> dict[str, Any]:
    if member["status"] == TaskStatus.SUCCESS and isinstance(member.get("result"), dict):
        return {"index": index, "status": "created", **member["result"]}
    error = str(member.get("error") or member["status"]).removeprefix("permanent error: ")
    return {"index": index, "status": "failed", "errors": [{"field": "book", "message": error[:300]}]}


def write_report(results: list[dict[str, Any]], import_id: str) -> dict[str, Any]:
    """The chord's callback: every item's outcome, in pages, then the import's counts and status."""
    document = _items(import_id)
    valid = [item for item in document["items"] if "book" in item]
    outcomes = {
        item["index"]: {"index": item["index"], "status": "failed", "errors": item["errors"]}
        for item in document["items"]
        if "errors" in item
    }
    for item, member in zip(valid, results, strict=True):
        outcomes[item["index"]] = _member_outcome(item["index"], member)
    ordered = [outcomes[i] for i in sorted(outcomes)]
    pages = [ordered[start : start + REPORT_PAGE] for start in range(0, len(ordered), REPORT_PAGE)]
    with ImportItem.batch_write() as batch:  # rewritten alike by a retried callback
        for number, page in enumerate(pages):
            batch.save(ImportItem(f"{import_id}#{number}", outcomes=page, expires_at=_expiry()))
    created = sum(1 for outcome in ordered if outcome["status"] == "created")
    record = ImportItem(import_id)
    record.update(actions=[ImportItem.report_writes.add(1)])
    try:
        record.update(
            actions=[
                ImportItem.status.set(FINISHED),
                ImportItem.created.set(created),
                ImportItem.failed.set(len(ordered) - created),
                ImportItem.pages.set(len(pages)),
                ImportItem.finished_at.set(utcnow()),
            ],
            condition=ImportItem.status == RUNNING,
        )
    except UpdateError as exc:
        if not condition_failed(exc):
            raise
    _discard(items_key(import_id))
    return {"created": created, "failed": len(ordered) - created}


def get_import(import_id: str, owner: str) -> dict[str, Any]:
    """An import of `owner` with its counts, and each item's outcome once finished; 404 for others."""
    try:
        record = ImportItem.get(import_id, consistent_read=True)
    except DoesNotExist:
        record = None
    if record is None or record.owner is None or record.owner != owner:
        raise NotFound(f"import {import_id} not found")
    summary: dict[str, Any] = {
        "id": record.id,
        "status": record.status,
        "total": int(record.total or 0),
        "created": None if record.created is None else int(record.created),
        "failed": None if record.failed is None else int(record.failed),
        "invalid": int(record.invalid or 0),
        "created_at": record.created_at.isoformat(),
        "finished_at": record.finished_at.isoformat() if record.finished_at else None,
    }
    items: list[dict[str, Any]] = []
    if record.status == FINISHED:
        keys = [f"{import_id}#{number}" for number in range(int(record.pages or 0))]
        pages = sorted(ImportItem.batch_get(keys), key=lambda page: int(page.id.rsplit("#", 1)[1]))
        items = [outcome for page in pages for outcome in (page.outcomes or [])]
    else:
        summary["done"] = int(record.invalid or 0) + chord_progress(import_id)
    return {"import": summary, "items": items}
