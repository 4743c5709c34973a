"""The shapes of the API's answers, for the published contract (`GET /openapi.json`).

The services type their answers as TypedDicts (`books/answers.py`, `subscriptions/answers.py`,
`ops/task_answers.py`: a domain may not import the API); these models describe the same shapes
for the contract (they never build an answer), and tests/unit/test_answer_shapes.py keeps both
to the same keys. Fields the
services may add later are allowed (`extra="allow"`); what is listed is what a client may
rely on. The suite's Schemathesis run checks every answer against them.
"""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel, ConfigDict, Field


class Shape(BaseModel):
    """An answer's documented fields; more may come."""

    model_config = ConfigDict(extra="allow")


class ErrorField(Shape):
    """Which input was wrong, and why."""

    field: str
    message: str


class Error(BaseModel):
    """The one error shape of every 4xx/5xx, whoever answers it (route, authorizer, gateway)."""

    model_config = ConfigDict(extra="forbid")

    error: str = Field(description="a stable code, e.g. ValidationError, NotFound, ServiceUnavailable")
    message: str
    fields: list[ErrorField]


class Thumbnail(Shape):
    key: str
    url: str = Field(description="a presigned GET URL, valid for a limited time")


class CoverUpload(Shape):
    """A direct upload waiting beside a ready cover, which stays served until this one is ready."""

    version: int
    status: str = Field(description="awaiting_upload, pending, failed or upload_expired")
    error: str | None


class Cover(Shape):
    status: str = Field(description="none, pending, awaiting_upload, upload_expired, ready or failed")
    version: int
    error: str | None
    sizes: list[int]
    thumbnails: dict[str, Thumbnail]
    upload: CoverUpload | None = None


class Book(Shape):
    id: str
    title: str
    authors: list[str]
    description: str | None
    owner: str
    cover_status: str
    cover: Cover
    created_at: str
    updated_at: str


class BookPage(Shape):
    items: list[Book]
    next_cursor: str | None


class UploadForm(Shape):
    """A presigned S3 POST: send `fields` and then the file as multipart/form-data to `url`."""

    url: str
    fields: dict[str, str]
    expires_at: str = Field(description="when the form stops working (ISO 8601, UTC)")
    max_bytes: int = Field(description="the largest file S3 accepts with this form")


class BookAccepted(Shape):
    """A book (or its cover) saved, with the tasks it started."""

    book: Book
    tasks: list[str]
    upload: UploadForm | None = None


class Subscription(Shape):
    author: str
    email: str
    status: str = Field(description="pending, confirmed, unsubscribed or confirmation_failed")


class Subscriber(Subscription):
    created_at: str


class SubscriberPage(Shape):
    items: list[Subscriber]
    next_cursor: str | None


class TaskRecord(Shape):
    id: str
    name: str
    status: str = Field(description="PENDING, STARTED, RETRY, SUCCESS, FAILURE or REVOKED")
    queue: str | None = None
    owner: str | None = None
    book_id: str | None = None
    args: Any = None
    kwargs: Any = None
    result: Any = None
    error: str | None = None
    traceback: str | None = None
    attempts: int | None = None
    retries: int | None = None
    created_at: str | None = None
    started_at: str | None = None
    finished_at: str | None = None
    updated_at: str | None = None
    invocation: str | None = Field(default=None, description="the Lambda request id of the last attempt")
    parent_id: str | None = Field(default=None, description="the task that sent this one (a canvas or a fan-out)")
    children: list[str] = Field(default_factory=list, description="the tasks this one sent")
    children_sent: int = 0
    rerun_of: str | None = Field(default=None, description="the task this one is a rerun of")
    reruns: list[str] = Field(default_factory=list)
    mail: dict[str, Any] | None = Field(default=None, description="a mail fan-out's counts (GET /tasks/{id} only)")


class ImportSummary(Shape):
    id: str
    status: str = Field(description="running, then finished")
    total: int


class ItemErrors(Shape):
    index: int
    errors: list[ErrorField]


class ImportAccepted(Shape):
    import_: ImportSummary = Field(alias="import")
    invalid: list[ItemErrors] = Field(description="the items refused at once, each with its own errors")
    tasks: list[str]


class ImportCounts(ImportSummary):
    created: int | None = Field(description="null while running")
    failed: int | None = Field(description="null while running")
    invalid: int
    done: int | None = Field(default=None, description="items final so far, while running")


class ImportOutcome(Shape):
    index: int
    status: str = Field(description="created or failed")
    book_id: str | None = None
    upload: UploadForm | None = Field(default=None, description="the item's presigned POST, for cover_upload")
    errors: list[ErrorField] | None = None


class ImportReport(Shape):
    import_: ImportCounts = Field(alias="import")
    items: list[ImportOutcome] = Field(description="every item's outcome in order, once finished")


class TaskPage(Shape):
    items: list[TaskRecord]
    next_cursor: str | None


class QueueOverview(Shape):
    queue: str
    name: str
    visible: int
    in_flight: int
    delayed: int
    oldest_age_seconds: float | None


class Queues(Shape):
    queues: list[QueueOverview]
    schedules: list[Schedule] = Field(description="the periodic tasks, as GET /schedules lists them")


class Redrive(Shape):
    queue: str
    method: str = Field(description="StartMessageMoveTask, or receive-send-delete where that is unsupported")


class DeadLetters(Shape):
    queue: str
    dead_letter_queue: str
    items: list[dict[str, Any]]


class Purged(Shape):
    purged: str
    task_id: str | None


class Rerun(Shape):
    id: str
    name: str
    status: str


class Schedule(Shape):
    name: str
    schedule: str = Field(description="rate(…) or cron(…)")
    running: bool
    runs: int
    skipped: int
    last_status: str | None


class Schedules(Shape):
    schedules: list[Schedule]


class DashboardSession(Shape):
    user: str
    expires_at: int
    csrf_token: str = Field(description="send it back as X-CSRF-Token on every dashboard POST")


class SignedOut(Shape):
    signed_out: bool


class LogLine(Shape):
    timestamp: str = Field(description="ISO 8601 UTC, to the millisecond")
    message: str


class TaskLogs(Shape):
    """An attempt's log lines from its invocation's log stream, bounded; `truncated`: more in CloudWatch."""

    attempt: int
    invocation: str | None = None
    log_group: str | None = None
    available: bool
    lines: list[LogLine]
    truncated: bool
    reason: str | None = None
    insights: dict[str, str]


class WorkerStats(Shape):
    available: bool


class SpecDocument(Shape):
    """This document (OpenAPI 3.1)."""

    openapi: str
    info: dict[str, Any]
    paths: dict[str, Any]


class ConsumerControl(Shape):
    queue: str
    paused: bool
    max_concurrency: int = Field(description="the event source mapping's ScalingConfig.MaximumConcurrency (2-1000)")
    mappings: int = Field(description="event source mappings updated (0 under the local runner, which reads the state)")


class TaskStats(Shape):
    window: str
    bucket: str = Field(description="minute or hour")
    tasks: dict[str, dict[str, Any]] = Field(description="per task name: counts and runtime p50/p95/max in ms")
    series: list[dict[str, Any]]


class AuditLog(Shape):
    items: list[dict[str, Any]] = Field(description="at, user, action, target, detail; newest first")


class RetriedFailures(Shape):
    runs: list[str]
    skipped: list[str]
    next_cursor: str | None


class RedrivenOne(Shape):
    redriven: str
    task_id: str | None
