"""The routes' contract, declared beside app.py's route table: one `Operation` per route.

`chalicelib.api.openapi` builds the published document (`GET /openapi.json`) from this table
and the pydantic models the routes validate with, so the contract cannot drift into a
hand-written file; tests/unit/test_openapi_document.py checks that the table and chalice's routes are the
same set, and Schemathesis checks the running API against the document.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from enum import Enum
from typing import Annotated, Literal

from pydantic import AfterValidator, BaseModel, Field

from chalicelib.api import responses as r
from chalicelib.books.schemas import BookCreate, BookUpdate, CoverUpload
from chalicelib.covers.storage import IMAGE_TYPES
from chalicelib.dashboard.task_list import MAX_RETRIES_PER_REQUEST
from chalicelib.imports.schemas import ImportCreate
from chalicelib.ops.task_query import MAX_WAIT_SECONDS
from chalicelib.platform.schemas import Page, StrictModel
from chalicelib.platform.validation import MAX_AUTHOR, MAX_EMAIL, MAX_PARAMETER, MAX_TASK_ID, single_line
from chalicelib.subscriptions.schemas import SubscriberCreate
from chalicelib.tasks.subjects import MAX_BOOK_ID


class Auth(Enum):
    """Who may call an operation."""

    PUBLIC = "public"
    API_KEY = "api_key"  # any valid key (Authorization: Bearer)
    ADMIN_KEY = "admin_key"  # an admin key (403 for others)
    SESSION = "session"  # the dashboard's session cookie
    SESSION_ACTION = "session_action"  # the cookie plus its CSRF token (dashboard POSTs)


#: Every query parameter and dashboard body string goes through the one text rule at run time
#: (`api.http.query_params`, the dashboard's parsers), so the documented models carry it too.
QueryText = Annotated[str, AfterValidator(single_line)]


# ---- the query strings: paging is validated by `Page` (parse_page), the filters by the services


class BookQuery(Page):
    """`GET /books`: all books, or one author's newest first."""

    author: QueryText | None = Field(
        default=None, min_length=1, max_length=MAX_AUTHOR, description="only this author's books"
    )


class TaskQuery(Page):
    """`GET /tasks`."""

    status: Literal["PENDING", "STARTED", "RETRY", "SUCCESS", "FAILURE", "REVOKED"] | None = None
    name: QueryText | None = Field(
        default=None, min_length=1, max_length=200, description="a task name, e.g. covers.resize"
    )


class DashboardTaskQuery(Page):
    """`GET /dashboard/api/tasks`: the API's filters, a book and a time window; "" is no filter (an empty input)."""

    status: Literal["PENDING", "STARTED", "RETRY", "SUCCESS", "FAILURE", "REVOKED", ""] | None = None
    name: QueryText | None = Field(default=None, max_length=200, description="a task name, or part of one")
    book: QueryText | None = Field(default=None, max_length=MAX_BOOK_ID)
    q: QueryText | None = Field(
        default=None, max_length=200, description="text in the name, args, result, error or title"
    )
    since: datetime | Literal[""] | None = Field(default=None, description="ISO 8601, e.g. 2026-01-31T12:00:00Z")
    until: datetime | Literal[""] | None = Field(default=None, description="ISO 8601, e.g. 2026-01-31T12:00:00Z")


class RetryFailuresQuery(DashboardTaskQuery):
    """`POST /dashboard/api/tasks/retry-failures`: the list's filters; only FAILURE tasks run again."""

    status: Literal["FAILURE", ""] | None = None
    limit: int = Field(default=MAX_RETRIES_PER_REQUEST, ge=1, le=MAX_RETRIES_PER_REQUEST)


class StatsQuery(StrictModel):
    """`GET /dashboard/api/stats`."""

    window: Literal["1h", "24h", "7d", ""] = Field(default="1h", description='"" is the default, 1h')


class QueueConcurrency(StrictModel):
    """Body of `PUT /queues/{name}/concurrency`: Lambda's bounds for MaximumConcurrency."""

    max_concurrency: int = Field(ge=2, le=1000)


class TaskWait(StrictModel):
    """`GET /tasks/{task_id}`: wait up to this many seconds for the record to be final."""

    wait: int = Field(default=0, ge=0, le=MAX_WAIT_SECONDS)


class DeadLetterQuery(StrictModel):
    """`GET /dashboard/api/queues/{name}/dead-letters`."""

    limit: int = Field(default=20, ge=1, le=100)


class TaskLogsQuery(StrictModel):
    """`GET /dashboard/api/tasks/{task_id}/logs`."""

    attempt: int = Field(ge=1, le=1000, description="the attempt's number, from the task's history")


class TokenQuery(StrictModel):
    """The token of a mail's link (it is the credential)."""

    token: QueryText = Field(max_length=MAX_PARAMETER, description="the token from the mail's link")


class AssetQuery(StrictModel):
    """`GET /dashboard/static/{name}`: the asset's version pins a year-long cache."""

    v: QueryText | None = Field(default=None, max_length=MAX_PARAMETER)


class DashboardLogin(StrictModel):
    """Body of `POST /dashboard/login`: an admin API key, exchanged for the session cookie."""

    key: QueryText = Field(min_length=1, max_length=512, pattern=r"^\S+$")


class DeadLetterPurge(StrictModel):
    """Body of `POST /dashboard/api/queues/{name}/dead-letters/purge`."""

    message_id: QueryText = Field(min_length=1, max_length=100)


# ---- path parameters, by name (json_errors checks each by the same name: chalicelib.api.http)

PATH_PARAMETERS: dict[str, dict[str, object]] = {
    "book_id": {"type": "string", "format": "uuid", "description": "a book id (404 for any other text)"},
    "task_id": {"type": "string", "minLength": 1, "maxLength": MAX_TASK_ID, "pattern": "^[A-Za-z0-9][A-Za-z0-9._:-]*$"},
    "name": {"type": "string", "minLength": 1, "maxLength": MAX_AUTHOR},
    "email": {"type": "string", "format": "email", "maxLength": MAX_EMAIL},
    "import_id": {"type": "string", "minLength": 1, "maxLength": 64, "description": "an import id (404 for others)"},
}


@dataclass(frozen=True)
class Operation:
    """One route: what it takes, who may call it, what it answers."""

    method: str
    path: str
    summary: str
    status: int  # the success status
    answer: type[BaseModel] | None  # JSON answer; None: no body (204) or `media`
    auth: Auth = Auth.PUBLIC
    body: type[BaseModel] | None = None
    body_types: tuple[str, ...] = ("application/json",)
    query: type[BaseModel] | None = None
    media: tuple[str, ...] = ()  # non-JSON answers (HTML pages, assets)
    errors: tuple[int, ...] = ()  # statuses beyond those every operation of its kind has
    tag: str = "books"
    link_page: bool = False  # a mail link's route: errors are a page when Accept asks for text/html
    redirects: bool = False  # 308 to the canonical path (`…/dashboard/` → `…/dashboard`)

    @property
    def key(self) -> tuple[str, str]:
        return self.method, self.path


_HTML = ("text/html",)
_FORMS = ("application/x-www-form-urlencoded", "multipart/form-data", "text/plain", "application/json")

OPERATIONS: tuple[Operation, ...] = (
    Operation("GET", "/openapi.json", "This document (OpenAPI 3.1)", 200, r.SpecDocument, tag="meta"),
    # ---- books
    Operation(
        "POST",
        "/books",
        "Add a book (and its cover, inline or by direct upload)",
        202,
        r.BookAccepted,
        Auth.API_KEY,
        BookCreate,
        errors=(409,),
    ),
    Operation("GET", "/books", "List books, all or by author", 200, r.BookPage, query=BookQuery),
    Operation("GET", "/books/{book_id}", "One book", 200, r.Book),
    Operation(
        "PUT",
        "/books/{book_id}",
        "Change a book's title, authors or description",
        200,
        r.Book,
        Auth.API_KEY,
        BookUpdate,
        errors=(409,),
    ),
    Operation("DELETE", "/books/{book_id}", "Delete a book", 204, None, Auth.API_KEY, errors=(409,)),
    Operation(
        "PUT",
        "/books/{book_id}/cover",
        "Replace a book's cover (the image is the body)",
        202,
        r.BookAccepted,
        Auth.API_KEY,
        body_types=tuple(IMAGE_TYPES),
        errors=(409,),
    ),
    Operation(
        "POST",
        "/books/{book_id}/cover/upload",
        "Start a direct cover upload (a presigned S3 POST)",
        201,
        r.BookAccepted,
        Auth.API_KEY,
        CoverUpload,
        errors=(409,),
    ),
    # ---- subscriptions
    Operation(
        "POST",
        "/authors/{name}/subscribers",
        "Subscribe an address to an author's new books",
        201,
        r.Subscription,
        Auth.API_KEY,
        SubscriberCreate,
        errors=(409, 429),
        tag="subscriptions",
    ),
    Operation(
        "GET",
        "/authors/{name}/subscribers",
        "Your subscriptions to an author",
        200,
        r.SubscriberPage,
        Auth.API_KEY,
        query=Page,
        tag="subscriptions",
    ),
    Operation(
        "DELETE",
        "/authors/{name}/subscribers/{email}",
        "Remove your subscription",
        204,
        None,
        Auth.API_KEY,
        tag="subscriptions",
    ),
    Operation(
        "GET",
        "/subscriptions/confirm",
        "The confirmation link of a mail (a page with a button: link scanners only GET)",
        200,
        None,
        query=TokenQuery,
        media=_HTML,
        errors=(410,),
        tag="subscriptions",
        link_page=True,
    ),
    Operation(
        "POST",
        "/subscriptions/confirm",
        "Confirm a subscription (the page's button)",
        200,
        None,
        query=TokenQuery,
        body_types=_FORMS,
        media=_HTML,
        errors=(410,),
        tag="subscriptions",
        link_page=True,
    ),
    Operation(
        "GET",
        "/subscriptions/unsubscribe",
        "The unsubscribe link of a mail (a page with a button)",
        200,
        None,
        query=TokenQuery,
        media=_HTML,
        errors=(410,),
        tag="subscriptions",
        link_page=True,
    ),
    Operation(
        "POST",
        "/subscriptions/unsubscribe",
        "Unsubscribe (RFC 8058 one-click, and the page's button)",
        200,
        None,
        query=TokenQuery,
        body_types=_FORMS,
        media=_HTML,
        errors=(410,),
        tag="subscriptions",
        link_page=True,
    ),
    # ---- tasks and queues
    Operation(
        "GET",
        "/tasks/{task_id}",
        "One task record (yours; any for admins)",
        200,
        r.TaskRecord,
        Auth.API_KEY,
        query=TaskWait,
        tag="tasks",
    ),
    Operation(
        "POST",
        "/tasks/{task_id}/revoke",
        "Revoke a task (yours; any for admins): it never runs, or stops where it checks",
        200,
        r.TaskRecord,
        Auth.API_KEY,
        errors=(409,),
        tag="tasks",
    ),
    Operation(
        "POST",
        "/imports",
        "Import up to 500 books; each is created by a task, the report comes when all are done",
        202,
        r.ImportAccepted,
        Auth.API_KEY,
        ImportCreate,
        errors=(409,),
    ),
    Operation(
        "GET",
        "/imports/{import_id}",
        "An import of yours: status, counts, each item's outcome",
        200,
        r.ImportReport,
        Auth.API_KEY,
    ),
    Operation(
        "GET", "/tasks", "Task records, newest first", 200, r.TaskPage, Auth.ADMIN_KEY, query=TaskQuery, tag="tasks"
    ),
    Operation("GET", "/queues", "Queues and their dead-letter queues", 200, r.Queues, Auth.ADMIN_KEY, tag="tasks"),
    Operation(
        "POST",
        "/queues/{name}/redrive",
        "Move a dead-letter queue's messages back",
        202,
        r.Redrive,
        Auth.ADMIN_KEY,
        tag="tasks",
    ),
    Operation(
        "POST", "/queues/{name}/pause", "Pause a queue's consumers", 200, r.ConsumerControl, Auth.ADMIN_KEY, tag="tasks"
    ),
    Operation(
        "POST",
        "/queues/{name}/resume",
        "Resume a queue's consumers",
        200,
        r.ConsumerControl,
        Auth.ADMIN_KEY,
        tag="tasks",
    ),
    Operation(
        "PUT",
        "/queues/{name}/concurrency",
        "Set a queue's maximum concurrency",
        200,
        r.ConsumerControl,
        Auth.ADMIN_KEY,
        QueueConcurrency,
        tag="tasks",
    ),
    Operation(
        "GET", "/schedules", "The periodic tasks and their last runs", 200, r.Schedules, Auth.ADMIN_KEY, tag="tasks"
    ),
    # ---- the dashboard (admins; a session cookie, not a Bearer key)
    Operation("GET", "/dashboard", "The dashboard page", 200, None, media=_HTML, tag="dashboard", redirects=True),
    Operation(
        "GET",
        "/dashboard/static/{name}",
        "A dashboard asset (script, style)",
        200,
        None,
        query=AssetQuery,
        media=("text/javascript", "text/css", "image/svg+xml"),
        tag="dashboard",
    ),
    Operation(
        "POST",
        "/dashboard/login",
        "Sign in with an admin key",
        200,
        r.DashboardSession,
        body=DashboardLogin,
        errors=(401, 403),
        tag="dashboard",
    ),
    Operation(
        "POST",
        "/dashboard/logout",
        "Sign out",
        200,
        r.SignedOut,
        Auth.SESSION_ACTION,
        body_types=("application/json",),
        tag="dashboard",
    ),
    Operation(
        "GET",
        "/dashboard/api/session",
        "The session: user, expiry, CSRF token",
        200,
        r.DashboardSession,
        Auth.SESSION,
        tag="dashboard",
    ),
    Operation(
        "GET",
        "/dashboard/api/queues",
        "Queues and their dead-letter queues",
        200,
        r.Queues,
        Auth.SESSION,
        tag="dashboard",
    ),
    Operation(
        "POST",
        "/dashboard/api/queues/{name}/redrive",
        "Move a dead-letter queue's messages back",
        202,
        r.Redrive,
        Auth.SESSION_ACTION,
        body_types=("application/json",),
        tag="dashboard",
    ),
    Operation(
        "GET",
        "/dashboard/api/queues/{name}/dead-letters",
        "Peek at a dead-letter queue's messages",
        200,
        r.DeadLetters,
        Auth.SESSION,
        query=DeadLetterQuery,
        tag="dashboard",
    ),
    Operation(
        "POST",
        "/dashboard/api/queues/{name}/dead-letters/purge",
        "Delete one dead letter",
        200,
        r.Purged,
        Auth.SESSION_ACTION,
        DeadLetterPurge,
        tag="dashboard",
    ),
    Operation(
        "GET",
        "/dashboard/api/tasks",
        "Task records, filtered",
        200,
        r.TaskPage,
        Auth.SESSION,
        query=DashboardTaskQuery,
        tag="dashboard",
    ),
    Operation(
        "GET", "/dashboard/api/tasks/{task_id}", "One task record", 200, r.TaskRecord, Auth.SESSION, tag="dashboard"
    ),
    Operation(
        "GET",
        "/dashboard/api/tasks/{task_id}/logs",
        "One attempt's log lines (CloudWatch Logs)",
        200,
        r.TaskLogs,
        Auth.SESSION,
        query=TaskLogsQuery,
        errors=(404,),
        tag="dashboard",
    ),
    Operation(
        "POST",
        "/dashboard/api/tasks/{task_id}/rerun",
        "Send a failed task again",
        202,
        r.Rerun,
        Auth.SESSION_ACTION,
        body_types=("application/json",),
        errors=(409,),
        tag="dashboard",
    ),
    Operation(
        "POST",
        "/dashboard/api/queues/{name}/dead-letters/redrive",
        "Send one dead letter back to its queue",
        202,
        r.RedrivenOne,
        Auth.SESSION_ACTION,
        DeadLetterPurge,
        tag="dashboard",
    ),
    Operation(
        "POST",
        "/dashboard/api/tasks/{task_id}/revoke",
        "Revoke a task",
        200,
        r.TaskRecord,
        Auth.SESSION_ACTION,
        body_types=("application/json",),
        errors=(409,),
        tag="dashboard",
    ),
    Operation(
        "POST",
        "/dashboard/api/tasks/retry-failures",
        "Run every FAILURE of a filter again (one page)",
        202,
        r.RetriedFailures,
        Auth.SESSION_ACTION,
        body_types=("application/json",),
        query=RetryFailuresQuery,
        tag="dashboard",
    ),
    Operation(
        "POST",
        "/dashboard/api/queues/{name}/pause",
        "Pause a queue's consumers",
        200,
        r.ConsumerControl,
        Auth.SESSION_ACTION,
        body_types=("application/json",),
        tag="dashboard",
    ),
    Operation(
        "POST",
        "/dashboard/api/queues/{name}/resume",
        "Resume a queue's consumers",
        200,
        r.ConsumerControl,
        Auth.SESSION_ACTION,
        body_types=("application/json",),
        tag="dashboard",
    ),
    Operation(
        "PUT",
        "/dashboard/api/queues/{name}/concurrency",
        "Set a queue's maximum concurrency",
        200,
        r.ConsumerControl,
        Auth.SESSION_ACTION,
        QueueConcurrency,
        tag="dashboard",
    ),
    Operation(
        "GET",
        "/dashboard/api/stats",
        "Statistics per task name",
        200,
        r.TaskStats,
        Auth.SESSION,
        query=StatsQuery,
        tag="dashboard",
    ),
    Operation("GET", "/dashboard/api/audit", "The controls' audit log", 200, r.AuditLog, Auth.SESSION, tag="dashboard"),
    Operation(
        "GET",
        "/dashboard/api/workers",
        "The local runtime's counters",
        200,
        r.WorkerStats,
        Auth.SESSION,
        tag="dashboard",
    ),
)
