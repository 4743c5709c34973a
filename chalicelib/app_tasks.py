"""The application's tasks. Each is declared once, with its queue (`@task(..., queue=...)`).

The domains send these by name (`get_task(books.RESIZE_TASK)`), since this module sits above
them; importing it (as `app` does) registers every task, the upload tasks included, and with
them the S3-notification adapter of the media queue (`covers/upload/tasks.py`).

Every function imports this at init, the API too, to send by name: so it declares (name,
queue, options) at import and imports what only a worker runs (the mail fan-out, the
reconciler, the relay) inside the task bodies, at their first run. Only what the API imports
anyway is imported here at the top (bench/README.md §5, "cold start").
"""

from __future__ import annotations

from typing import Any

from pynamodb.exceptions import DoesNotExist

from chalicelib.books import service as books
from chalicelib.books.models import Book
from chalicelib.covers import service as covers
from chalicelib.covers.upload import tasks as upload_tasks  # noqa: F401 - the upload tasks and the media queue's S3 adapter
from chalicelib.imports import service as imports
from chalicelib.mail.names import PAGE_TASK, PAGE_TIME_LIMIT, RESEND_TASK
from chalicelib.platform import mailer as mail
from chalicelib.platform.authors import author_key
from chalicelib.platform.config import get_settings
from chalicelib.platform.observability import emit
from chalicelib.subscriptions import consent, tokens
from chalicelib.subscriptions import service as subscribers
from chalicelib.tasks import canvas  # noqa: F401 - the chord unlock task and the callbacks' hook
from chalicelib.tasks.decorator import task
from chalicelib.tasks.errors import PermanentTaskError
from chalicelib.tasks.periodic import periodic_task
from chalicelib.tasks.registry import FailureInfo


def _cover_failed(
    exc: BaseException, task_id: str, args: list[Any], kwargs: dict[str, Any], einfo: FailureInfo
) -> None:
    """on_failure of covers.resize: the cover version says `failed` and why, whatever the cause."""
    covers.mark_failed(str(args[0]), int(args[1]), str(exc) if isinstance(exc, PermanentTaskError) else einfo.reason)


def _confirmation_failed(
    exc: BaseException, task_id: str, args: list[Any], kwargs: dict[str, Any], einfo: FailureInfo
) -> None:
    """on_failure of the confirmation mail: the subscription says so, and subscribing again resends."""
    consent.confirmation_failed(str(args[0]), str(args[1]), einfo.reason)


@task(books.RESIZE_TASK, queue="media", book_arg=True, max_retries=3, on_failure=_cover_failed)
def resize_cover(book_id: str, version: int) -> dict[str, Any]:
    """Make the cover's thumbnails in S3 and mark the book ready."""
    return covers.resize(book_id, version)


@task(books.NOTIFY_TASK, book_arg=True, max_retries=5, time_limit=PAGE_TIME_LIMIT)
def notify_subscribers(book_id: str) -> dict[str, Any]:
    """Start the book's mail fan-out: the first page (see `fanout`)."""
    from chalicelib.mail import fanout, recipients  # here: only the default worker runs the fan-out

    return fanout.run_page(book_id, fanout.ROOT_PAGE, recipients.START)


@task(PAGE_TASK, book_arg=True, max_retries=5, time_limit=PAGE_TIME_LIMIT)
def fanout_page(
    book_id: str, page: str, position: dict[str, Any], segment: dict[str, Any] | None = None
) -> dict[str, Any]:
    """One later page of a book's fan-out: the dealer's (no segment) or a segment's (ids are deterministic)."""
    from chalicelib.mail import fanout

    return fanout.run_page(book_id, page, position, segment)  # type: ignore[arg-type]


@task(RESEND_TASK, book_arg=True, max_retries=3)
def resend(book_id: str, pairs: list[list[str]], attempt: int) -> dict[str, Any]:
    """Retry, alone, the destinations of a bulk call that SES refused for a passing reason."""
    from chalicelib.mail import fanout

    return fanout.resend(book_id, pairs, attempt)


@task("mail.new_book", book_arg=True, max_retries=3)
def send_new_book_email(book_id: str, email: str, subscribed_to: str | None = None) -> dict[str, Any]:
    """Tell one subscriber about a new book (kept for messages queued before bulk fan-out).

    Messages queued by the per-recipient design carry no `subscribed_to`: their unsubscribe
    link names the book's first author.
    """
    try:
        book = Book.get(book_id)
    except DoesNotExist:
        return {"skipped": "book deleted"}
    subscribed_to = subscribed_to or author_key(str(book.authors[0]))
    unsubscribe = tokens.unsubscribe_url(subscribed_to, email)
    authors = ", ".join(str(a) for a in book.authors)
    text = (
        f"A new book by {authors} is on the shelf: {book.title}\n\n{book.description or ''}".rstrip()
        + f"\n\nStop these mails: {unsubscribe}\n"
    )
    headers = mail.unsubscribe_headers(unsubscribe)
    message_id = mail.send_email(email, f"New book: {book.title}", text, headers)
    emit("EmailsSent")
    return {"message_id": message_id, "to": email}


# rate_limit: a burst of sign-ups (or a bot) mails addresses that have not agreed to anything; at
# most 20 a second for the whole app keeps it from spending the SES send rate the fan-out needs
# and from souring the sender's reputation in one go. Over the rate they wait, never fail.
@task(subscribers.CONFIRM_TASK, max_retries=3, rate_limit="20/s", on_failure=_confirmation_failed)
def send_confirmation(author_key: str, email: str) -> dict[str, Any]:
    """Mail the address a single-use link that confirms its subscription."""
    return consent.send_confirmation(author_key, email)


@task(imports.START_TASK, max_retries=5)
def start_import(import_id: str) -> dict[str, Any]:
    """Send an import's member tasks as a chord (safe to retry: the ids derive from the import)."""
    return imports.send_members(import_id)


@task(imports.CREATE_TASK, max_retries=3)
def create_imported_book(import_id: str, index: int, owner: str, book: dict[str, Any]) -> dict[str, Any]:
    """Create one book of an import (a chord member)."""
    return imports.create_member(import_id, index, owner, book)


@task(imports.FINISH_TASK, max_retries=5)
def finish_import(results: list[dict[str, Any]], import_id: str) -> dict[str, Any]:
    """The import chord's callback: write the report once every book is final."""
    return imports.write_report(results, import_id)


# ---------------------------------------------------------------- periodic tasks (tasks/periodic.py)


def _minutes(count: int) -> str:
    return f"{count} minutes"


@periodic_task("outbox_relay", rate=lambda: _minutes(get_settings().outbox_relay_minutes))
def relay_outbox() -> dict[str, int]:
    """Send the tasks whose records were committed but whose SQS send failed or never happened,
    and those whose ETA is now within SQS's 15 minutes."""
    from chalicelib.platform import deadline
    from chalicelib.tasks import outbox

    return outbox.relay(deadline.remaining_ms)


@periodic_task("dead_letter_reconciler", rate=lambda: _minutes(get_settings().reconcile_minutes))
def reconcile() -> dict[str, int]:
    """Mark FAILURE the tasks whose messages the redrive policy moved to a DLQ."""
    from chalicelib.tasks.reconcile import reconcile_dead_letters  # here: only its schedule runs it

    return reconcile_dead_letters()
