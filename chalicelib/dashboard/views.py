"""What each dashboard route does with its request: the session check, then one service call.

The routes in app.py stay a line or two; this module is the glue between Chalice requests
and the services (queues, task records, the task framework), like `chalicelib.api.http` is for
the API's other routes. JSON answers use the one error shape and the dashboard's headers.
"""

from __future__ import annotations

import functools
from collections.abc import Callable
from typing import Any

from chalice.app import Request, Response

from chalicelib.api.http import body_json, json_errors
from chalicelib.dashboard import session, stats, web, workers
from chalicelib.dashboard import task_list as task_list_
from chalicelib.dashboard import task_logs as task_logs_
from chalicelib.ops import audit, consumers, queues, schedules, task_query
from chalicelib.platform import sqs
from chalicelib.platform.errors import NotFound, ValidationFailed
from chalicelib.platform.observability import logger
from chalicelib.tasks.reconcile import settle_dead_letter
from chalicelib.tasks.rerun import rerun, rerunnable


def answers(view: Callable[..., Response]) -> Callable[..., Response]:
    """JSON errors (4xx, 503) as elsewhere in the API, plus the dashboard's security headers on every answer."""
    guarded = json_errors(view)

    @functools.wraps(view)
    def wrapper(*args: Any, **kwargs: Any) -> Response:
        response = guarded(*args, **kwargs)
        response.headers = {**response.headers, **web.SECURITY_HEADERS}
        response.headers.setdefault("Cache-Control", "no-store")
        return response

    return wrapper


def page(request: Request) -> Response:
    """The page; `…/dashboard/` is sent to `…/dashboard`, where its relative asset links resolve.

    The Location is relative, so it holds behind any stage or base path (`/api/dashboard/`).
    """
    if str((request.context or {}).get("path") or "").endswith("/"):
        return web.redirect("../dashboard")
    return web.page()


def login(request: Request) -> Response:
    """Exchange an admin key (posted once, in the body) for the session cookie."""
    session.check_origin(request)
    signed_in, cookie = session.login(body_json(request))
    logger.info("dashboard sign-in", extra={"user": signed_in.user})
    return web.json_answer(signed_in.as_dict(), 200, **{"Set-Cookie": cookie})


def logout(request: Request) -> Response:
    """End the session: server-side (its cookie stops working everywhere) and in this browser."""
    session.revoke(session.current(request, action=True))
    return web.json_answer({"signed_out": True}, 200, **{"Set-Cookie": session.logout_cookie()})


def whoami(request: Request) -> Response:
    """The session's user, expiry and CSRF token (401 when signed out)."""
    return web.json_answer(session.current(request).as_dict())


def overview(request: Request) -> Response:
    """Queues and DLQs with depth, oldest age and consumer limits; the periodic tasks' last runs."""
    session.current(request)
    overview_ = queues.overview()
    stats.keep_depths(overview_)
    return web.json_answer(
        {
            "queues": overview_,
            "schedules": schedules.overview(),
            "depth_series": stats.depth_series(),
            "depth_source": stats.depth_source(),
        }
    )


def task_list(request: Request, query: dict[str, str]) -> Response:
    """A filtered page of task records."""
    session.current(request)
    return web.json_answer(task_list_.list_tasks(query))


def task_detail(request: Request, task_id: str) -> Response:
    """One task record with arguments, result, error and traceback."""
    session.current(request)
    record = task_query.get_record(_task_id(task_id), "", admin=True)
    detail = {
        **record,
        # "Run again" only where it can help: not after a permanent error (see tasks/rerun.py).
        "rerunnable": rerunnable(record["status"], record["error"]),
        "history": task_list_.attempt_history(record["id"], record["attempts"]),
        "logs": task_list_.log_query(record["id"]),
    }
    return web.json_answer(detail)


def task_logs(request: Request, task_id: str, query: dict[str, str]) -> Response:
    """One attempt's log lines from CloudWatch Logs (bounded), with the Logs Insights query."""
    session.current(request)
    return web.json_answer(task_logs_.attempt_logs(_task_id(task_id), task_logs_.parse_attempt(query.get("attempt"))))


def dead_letters(request: Request, queue: str, query: dict[str, str]) -> Response:
    """Messages of a DLQ, peeked (left in place)."""
    session.current(request)
    limit = query.get("limit", "20")
    if not limit.isdigit() or not 1 <= int(limit) <= 100:
        raise ValidationFailed("invalid limit", [{"field": "limit", "message": "an integer from 1 to 100"}])
    return web.json_answer(queues.dead_letters(queue, int(limit)))


def redrive(request: Request, queue: str) -> Response:
    """Move a DLQ's messages back to its queue."""
    admin = session.current(request, action=True)
    moved = queues.redrive(queue)
    audit.record(admin.user, "redrive", f"queue {queue}", str(moved.get("moved", moved.get("method", ""))))
    return web.json_answer(moved, 202)


def rerun_task(request: Request, task_id: str) -> Response:
    """Run a finished task again, as a new run linked to the old."""
    admin = session.current(request, action=True)
    run = rerun(_task_id(task_id))
    audit.record(admin.user, "run again", f"task {task_id}", f"new run {run['id']}")
    return web.json_answer(run, 202)


def revoke_task(request: Request, task_id: str) -> Response:
    """Revoke a PENDING, RETRY or STARTED task (409 when it is final)."""
    admin = session.current(request, action=True)
    record = task_query.revoke(_task_id(task_id), admin.user, admin=True)
    audit.record(admin.user, "revoke", f"task {task_id}")
    return web.json_answer(record)


def retry_failures(request: Request, query: dict[str, str]) -> Response:
    """Run again every FAILURE of the list's filter: one bounded page per request, with a cursor."""
    admin = session.current(request, action=True)
    done = task_list_.retry_failures(query)
    detail = f"filter {sorted((k, v) for k, v in query.items() if k != 'cursor')}: {len(done['runs'])} new run(s)"
    audit.record(admin.user, "retry failures", "tasks", detail)
    return web.json_answer(done, 202)


def pause_queue(request: Request, queue: str, paused: bool) -> Response:
    """Pause (disable) or resume (enable) a queue's consumers."""
    admin = session.current(request, action=True)
    return web.json_answer(consumers.set_paused(queue, paused, admin.user))


def queue_concurrency(request: Request, queue: str) -> Response:
    """Set a queue's maximum concurrency (2-1,000)."""
    admin = session.current(request, action=True)
    return web.json_answer(consumers.set_concurrency(queue, consumers.concurrency(body_json(request)), admin.user))


def audit_log(request: Request) -> Response:
    """The controls used over the last 7 days, newest first."""
    session.current(request)
    return web.json_answer({"items": audit.recent(7)})


def purge_one(request: Request, queue: str) -> Response:
    """Delete ONE dead letter (confirmed on the page), and make its task record final."""
    admin = session.current(request, action=True)
    message_id = _message_id(body_json(request))
    deleted = queues.delete_dead_letter(queue, message_id)
    if deleted is None:
        raise NotFound(f"message {message_id} is no longer in the dead-letter queue (redriven or purged meanwhile?)")
    task_id, name = queues.message_task(deleted)
    # The reconciler only fixes records of messages it still finds in a DLQ: once the message is
    # gone, this is the last chance to make a record stuck in PENDING/STARTED/RETRY final.
    reason = f"dead letter purged from the dashboard by {admin.user}"
    settle_dead_letter(str(deleted.get("Body", "")), task_id, name, sqs.queue_settings(queue).key, reason)
    audit.record(admin.user, "purge dead letter", f"queue {queue}", f"task {task_id}, message {message_id}")
    return web.json_answer({"purged": message_id, "task_id": task_id})


def task_stats(request: Request, query: dict[str, str]) -> Response:
    """Per task name statistics over 1 h, 24 h or 7 d, with the outcome series."""
    session.current(request)
    return web.json_answer(stats.task_stats(query.get("window")))


def redrive_one(request: Request, queue: str) -> Response:
    """Send ONE dead letter (confirmed on the page) back to its queue."""
    admin = session.current(request, action=True)
    message_id = _message_id(body_json(request))
    moved = queues.delete_dead_letter(queue, message_id, resend=True)
    if moved is None:
        raise NotFound(f"message {message_id} is no longer in the dead-letter queue (redriven or purged meanwhile?)")
    task_id, _name = queues.message_task(moved)
    audit.record(admin.user, "redrive dead letter", f"queue {queue}", f"task {task_id}, message {message_id}")
    return web.json_answer({"redriven": message_id, "task_id": task_id}, 202)


def _message_id(body: Any) -> str:
    message_id = body.get("message_id") if isinstance(body, dict) else None
    if not isinstance(message_id, str) or not 0 < len(message_id) <= 100 or not message_id.isprintable():
        raise ValidationFailed("invalid message_id", [{"field": "message_id", "message": "a message id from the list"}])
    return message_id


def worker_stats(request: Request) -> Response:
    """Per-function counters (the local runtime's, or CloudWatch's when deployed), or why there are none."""
    session.current(request)
    return web.json_answer(workers.worker_stats())


def _task_id(value: str) -> str:
    if not 0 < len(value) <= 128 or not value.isprintable():
        raise ValidationFailed("invalid task id", [{"field": "task_id", "message": "1 to 128 printable characters"}])
    return value
