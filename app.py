"""Bookshelf Serverless: HTTP routes and SQS handlers (thin; the work is in chalicelib)."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from chalice.app import AuthRequest, AuthResponse, Chalice, Request, Response, SQSEvent

import chalicelib.app_tasks  # noqa: F401 - registers every task (the domains send them by name)
from chalicelib.api import auth, chalice_errors
from chalicelib.api.http import (
    body_json,
    content_type,
    json_errors,
    json_response,
    path_param,
    principal,
    query_params,
    raw_body,
)
from chalicelib.books import service as books
from chalicelib.books.schemas import BookCreate, BookUpdate, CoverUpload
from chalicelib.covers.storage import IMAGE_TYPES
from chalicelib.imports import service as imports
from chalicelib.platform.config import get_settings
from chalicelib.platform.idempotency import key_from as idempotency_key
from chalicelib.platform.lazy import deferred, lazy
from chalicelib.platform.schemas import parse_page, validate
from chalicelib.platform.snapstart import install as install_snapstart_hooks
from chalicelib.subscriptions import consent
from chalicelib.subscriptions import service as subscribers
from chalicelib.tasks import beat

# What only some routes or functions use loads at their first call (chalicelib/platform/lazy.py):
# the API's init never pays for the workers, the dashboard or the OpenAPI document.
if TYPE_CHECKING:
    from chalicelib.api import openapi, pages
    from chalicelib.dashboard import views as dashboard
    from chalicelib.dashboard import web as dashboard_web
    from chalicelib.ops import consumers, queues, schedules, task_query
    from chalicelib.subscriptions import schemas as subscriber_schemas
    from chalicelib.tasks import worker
else:
    openapi, pages = lazy("chalicelib.api.openapi"), lazy("chalicelib.api.pages")
    dashboard, dashboard_web = lazy("chalicelib.dashboard.views"), lazy("chalicelib.dashboard.web")
    consumers, queues, schedules, task_query = (
        lazy(f"chalicelib.ops.{name}") for name in ("consumers", "queues", "schedules", "task_query")
    )
    subscriber_schemas, worker = lazy("chalicelib.subscriptions.schemas"), lazy("chalicelib.tasks.worker")

settings = get_settings()
app = Chalice(app_name=settings.app_name, configure_logs=False)  # Powertools owns the "bookshelf" logger
app.api.binary_types.extend(t for t in IMAGE_TYPES if t not in app.api.binary_types)
chalice_errors.install(app)  # Chalice's own 415/405/500 answers in the one error shape
install_snapstart_hooks()  # clients and random seeds made safe to snapshot (SNAPSTART in the template)


# Named explicitly: an authorizer named `api_key` collides with API Gateway's built-in API key
# security scheme in chalice's swagger, which then demands `x-api-key` and never runs this.
@app.authorizer(ttl_seconds=300, name="api_key_auth")
def api_key(auth_request: AuthRequest) -> AuthResponse:
    """Let in callers with a valid API key."""
    caller = auth.authenticate(auth_request.token)
    if caller is None:
        return AuthResponse(routes=[], principal_id="anonymous")
    return AuthResponse(routes=["*"], principal_id=caller.user, context={"admin": str(caller.admin).lower()})


def _query() -> dict[str, str]:
    return query_params(app.current_request)


# The contract of every route below (chalicelib/api/contract.py, beside this table).
@app.route("/openapi.json", methods=["GET"])
@json_errors
def openapi_document() -> Response:
    return openapi.response()


@app.route("/books", methods=["POST"], authorizer=api_key, content_types=["application/json"])
@json_errors
def create_book() -> Response:
    caller = principal(app.current_request)
    data = validate(BookCreate, body_json(app.current_request))
    return json_response(books.create_book(caller.user, data, idempotency_key(app.current_request)), 202)


@app.route("/books", methods=["GET"])
@json_errors
def list_books() -> Response:
    query = _query()
    return json_response(books.list_books(query.get("author"), parse_page(query)))


@app.route("/books/{book_id}", methods=["GET"])
@json_errors
def get_book(book_id: str) -> Response:
    return json_response(books.view(books.get_book(book_id)))


@app.route("/books/{book_id}", methods=["PUT"], authorizer=api_key, content_types=["application/json"])
@json_errors
def update_book(book_id: str) -> Response:
    caller = principal(app.current_request)
    data = validate(BookUpdate, body_json(app.current_request))
    return json_response(books.update_book(book_id, caller.user, data))


@app.route("/books/{book_id}", methods=["DELETE"], authorizer=api_key)
@json_errors
def delete_book(book_id: str) -> Response:
    books.delete_book(book_id, principal(app.current_request).user)
    return Response(body="", status_code=204)


@app.route("/books/{book_id}/cover", methods=["PUT"], authorizer=api_key, content_types=list(IMAGE_TYPES))
@json_errors
def replace_cover(book_id: str) -> Response:
    request = app.current_request
    caller, key = principal(request), idempotency_key(request)
    return json_response(books.replace_cover(book_id, caller.user, raw_body(request), content_type(request), key), 202)


# Direct cover uploads (presigned S3 POST; S3's event notification drives the media worker).
@app.route("/books/{book_id}/cover/upload", methods=["POST"], authorizer=api_key, content_types=["application/json"])
@json_errors
def start_cover_upload(book_id: str) -> Response:
    data = validate(CoverUpload, body_json(app.current_request))
    return json_response(books.start_cover_upload(book_id, principal(app.current_request).user, data), 201)


@app.route("/imports", methods=["POST"], authorizer=api_key, content_types=["application/json"])
@json_errors
def start_import() -> Response:
    caller = principal(app.current_request)
    return json_response(
        imports.start_import(caller.user, body_json(app.current_request), idempotency_key(app.current_request)), 202
    )


@app.route("/imports/{import_id}", methods=["GET"], authorizer=api_key)
@json_errors
def get_import(import_id: str) -> Response:
    return json_response(imports.get_import(path_param(import_id), principal(app.current_request).user))


@app.route("/authors/{name}/subscribers", methods=["POST"], authorizer=api_key, content_types=["application/json"])
@json_errors
def subscribe(name: str) -> Response:
    caller = principal(app.current_request)
    data = validate(subscriber_schemas.SubscriberCreate, body_json(app.current_request))
    return json_response(subscribers.subscribe(path_param(name), data.email, caller.user), 201)


@app.route("/authors/{name}/subscribers", methods=["GET"], authorizer=api_key)
@json_errors
def list_subscribers(name: str) -> Response:
    caller = principal(app.current_request)
    return json_response(subscribers.list_subscribers(path_param(name), caller.user, parse_page(_query())))


@app.route("/authors/{name}/subscribers/{email}", methods=["DELETE"], authorizer=api_key)
@json_errors
def unsubscribe(name: str, email: str) -> Response:
    subscribers.unsubscribe(path_param(name), path_param(email), principal(app.current_request).user)
    return Response(body="", status_code=204)


# ---- public pages that mail links open (no API key: the token is the credential)
_FORM_TYPES = ["application/x-www-form-urlencoded", "multipart/form-data", "text/plain", "application/json"]


# errors: a page for browsers, else JSON
_link_page = deferred("chalicelib.api.pages", "link_view", lambda: app.current_request)


@app.route("/subscriptions/confirm", methods=["GET"])
@_link_page
def confirm_page() -> Response:
    """A page with one button: mail scanners fetch every link, so a GET must not confirm."""
    token = _query().get("token")
    return pages.confirm_form(consent.confirm_target(token), token or "")


@app.route("/subscriptions/confirm", methods=["POST"], content_types=_FORM_TYPES)
@_link_page
def confirm_subscription() -> Response:
    return pages.confirmed(consent.confirm(_query().get("token")))


@app.route("/subscriptions/unsubscribe", methods=["GET"])
@_link_page
def unsubscribe_page() -> Response:
    token = _query().get("token")
    return pages.unsubscribe_form(consent.unsubscribe_target(token), token or "")


@app.route("/subscriptions/unsubscribe", methods=["POST"], content_types=_FORM_TYPES)
@_link_page
def unsubscribe_one_click() -> Response:
    """RFC 8058 one-click (body `List-Unsubscribe=One-Click`) and the page's button."""
    return pages.unsubscribed(consent.unsubscribe(_query().get("token")))


@app.route("/tasks/{task_id}", methods=["GET"], authorizer=api_key)
@json_errors
def get_task(task_id: str) -> Response:
    caller = principal(app.current_request)
    return json_response(task_query.get_record(task_id, caller.user, caller.admin, _query().get("wait")))


@app.route("/tasks/{task_id}/revoke", methods=["POST"], authorizer=api_key)
@json_errors
def revoke_task(task_id: str) -> Response:
    caller = principal(app.current_request)
    return json_response(task_query.revoke(path_param(task_id), caller.user, caller.admin))


@app.route("/tasks", methods=["GET"], authorizer=api_key)
@json_errors
def list_tasks() -> Response:
    principal(app.current_request, admin=True)
    query = _query()
    return json_response(task_query.list_records(query.get("status"), query.get("name"), parse_page(query)))


@app.route("/queues", methods=["GET"], authorizer=api_key)
@json_errors
def list_queues() -> Response:
    principal(app.current_request, admin=True)
    return json_response({"queues": queues.overview(), "schedules": schedules.overview()})


@app.route("/queues/{name}/redrive", methods=["POST"], authorizer=api_key)
@json_errors
def redrive_queue(name: str) -> Response:
    principal(app.current_request, admin=True)
    return json_response(queues.redrive(name), 202)


@app.route("/queues/{name}/pause", methods=["POST"], authorizer=api_key)
@json_errors
def pause_queue(name: str) -> Response:
    return json_response(consumers.set_paused(name, True, principal(app.current_request, admin=True).user))


@app.route("/queues/{name}/resume", methods=["POST"], authorizer=api_key)
@json_errors
def resume_queue(name: str) -> Response:
    return json_response(consumers.set_paused(name, False, principal(app.current_request, admin=True).user))


@app.route("/queues/{name}/concurrency", methods=["PUT"], authorizer=api_key, content_types=["application/json"])
@json_errors
def queue_concurrency(name: str) -> Response:
    user = principal(app.current_request, admin=True).user
    return json_response(consumers.set_concurrency(name, consumers.concurrency(body_json(app.current_request)), user))


@app.on_sqs_message(
    queue=settings.media.name,
    batch_size=settings.media.batch_size,
    maximum_concurrency=settings.media.max_concurrency,
    name="media_worker",
)
def media_worker(event: SQSEvent) -> dict[str, Any]:
    """Cover resizing (the `media` queue)."""
    return worker.consume(event.to_dict(), event.context)


@app.on_sqs_message(
    queue=settings.default.name,
    batch_size=settings.default.batch_size,
    maximum_concurrency=settings.default.max_concurrency,
    name="default_worker",
)
def default_worker(event: SQSEvent) -> dict[str, Any]:
    """Emails and every other task (the `default` queue)."""
    return worker.consume(event.to_dict(), event.context)


# Every @periodic_task (chalicelib/app_tasks.py: outbox_relay, dead_letter_reconciler) is a scheduled
# function; Chalice finds each by its name in this module.
globals().update(beat.install(app))


@app.route("/schedules", methods=["GET"], authorizer=api_key)
@json_errors
def list_schedules() -> Response:
    principal(app.current_request, admin=True)
    return json_response({"schedules": schedules.overview()})


# ---------------------------------------------------------------- dashboard (admins; session cookie, not Bearer)

_dashboard_answers = deferred("chalicelib.dashboard.views", "answers")


def _request() -> Request:
    """The request being served (Chalice types it optional; inside a route it is always there)."""
    request = app.current_request
    if request is None:
        raise RuntimeError("no current request")
    return request


@app.route("/dashboard", methods=["GET"])
def dashboard_page() -> Response:
    return dashboard.page(_request())


@app.route("/dashboard/static/{name}", methods=["GET"])
@_dashboard_answers
def dashboard_static(name: str) -> Response:
    return dashboard_web.static(name, _query().get("v"))


@app.route("/dashboard/login", methods=["POST"], content_types=["application/json"])
@_dashboard_answers
def dashboard_login() -> Response:
    return dashboard.login(_request())


@app.route("/dashboard/logout", methods=["POST"], content_types=["application/json"])
@_dashboard_answers
def dashboard_logout() -> Response:
    return dashboard.logout(_request())


@app.route("/dashboard/api/session", methods=["GET"])
@_dashboard_answers
def dashboard_session() -> Response:
    return dashboard.whoami(_request())


@app.route("/dashboard/api/queues", methods=["GET"])
@_dashboard_answers
def dashboard_queues() -> Response:
    return dashboard.overview(_request())


@app.route("/dashboard/api/queues/{name}/redrive", methods=["POST"], content_types=["application/json"])
@_dashboard_answers
def dashboard_redrive(name: str) -> Response:
    return dashboard.redrive(_request(), name)


@app.route("/dashboard/api/queues/{name}/dead-letters", methods=["GET"])
@_dashboard_answers
def dashboard_dead_letters(name: str) -> Response:
    return dashboard.dead_letters(_request(), name, _query())


@app.route("/dashboard/api/queues/{name}/dead-letters/purge", methods=["POST"], content_types=["application/json"])
@_dashboard_answers
def dashboard_purge(name: str) -> Response:
    return dashboard.purge_one(_request(), name)


@app.route("/dashboard/api/tasks", methods=["GET"])
@_dashboard_answers
def dashboard_tasks() -> Response:
    return dashboard.task_list(_request(), _query())


@app.route("/dashboard/api/tasks/{task_id}", methods=["GET"])
@_dashboard_answers
def dashboard_task(task_id: str) -> Response:
    return dashboard.task_detail(_request(), path_param(task_id))


@app.route("/dashboard/api/tasks/{task_id}/logs", methods=["GET"])
@_dashboard_answers
def dashboard_task_logs(task_id: str) -> Response:
    return dashboard.task_logs(_request(), path_param(task_id), _query())


@app.route("/dashboard/api/tasks/{task_id}/rerun", methods=["POST"], content_types=["application/json"])
@_dashboard_answers
def dashboard_rerun(task_id: str) -> Response:
    return dashboard.rerun_task(_request(), path_param(task_id))


@app.route("/dashboard/api/queues/{name}/dead-letters/redrive", methods=["POST"], content_types=["application/json"])
@_dashboard_answers
def dashboard_redrive_one(name: str) -> Response:
    return dashboard.redrive_one(_request(), name)


@app.route("/dashboard/api/tasks/{task_id}/revoke", methods=["POST"], content_types=["application/json"])
@_dashboard_answers
def dashboard_revoke(task_id: str) -> Response:
    return dashboard.revoke_task(_request(), path_param(task_id))


@app.route("/dashboard/api/tasks/retry-failures", methods=["POST"], content_types=["application/json"])
@_dashboard_answers
def dashboard_retry_failures() -> Response:
    return dashboard.retry_failures(_request(), _query())


@app.route("/dashboard/api/queues/{name}/pause", methods=["POST"], content_types=["application/json"])
@_dashboard_answers
def dashboard_pause(name: str) -> Response:
    return dashboard.pause_queue(_request(), name, True)


@app.route("/dashboard/api/queues/{name}/resume", methods=["POST"], content_types=["application/json"])
@_dashboard_answers
def dashboard_resume(name: str) -> Response:
    return dashboard.pause_queue(_request(), name, False)


@app.route("/dashboard/api/queues/{name}/concurrency", methods=["PUT"], content_types=["application/json"])
@_dashboard_answers
def dashboard_concurrency(name: str) -> Response:
    return dashboard.queue_concurrency(_request(), name)


@app.route("/dashboard/api/audit", methods=["GET"])
@_dashboard_answers
def dashboard_audit() -> Response:
    return dashboard.audit_log(_request())


@app.route("/dashboard/api/stats", methods=["GET"])
@_dashboard_answers
def dashboard_stats() -> Response:
    return dashboard.task_stats(_request(), _query())


@app.route("/dashboard/api/workers", methods=["GET"])
@_dashboard_answers
def dashboard_workers() -> Response:
    return dashboard.worker_stats(_request())
