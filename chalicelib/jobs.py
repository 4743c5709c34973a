"""The application's tasks. Each is declared once; routing lives in `tasks/routes.py`."""

from __future__ import annotations

from typing import Any

from pynamodb.exceptions import DoesNotExist

from chalicelib import consent, covers, fanout, mail, recipients, tokens
from chalicelib.authors import author_key
from chalicelib.models import Book
from chalicelib.observability import emit
from chalicelib.tasks.decorator import task


@task("covers.resize", max_retries=3)
def resize_cover(book_id: str, version: int) -> dict[str, Any]:
    """Make the cover's thumbnails in S3 and mark the book ready."""
    return covers.resize(book_id, version)


@task("books.notify_subscribers", max_retries=5)
def notify_subscribers(book_id: str) -> dict[str, Any]:
    """Start the book's mail fan-out: the first page (see `fanout`)."""
    return fanout.run_page(book_id, fanout.ROOT_PAGE, recipients.START)


@task("mail.fanout_page", max_retries=5)
def fanout_page(book_id: str, page: str, position: dict[str, Any]) -> dict[str, Any]:
    """One later page of a book's fan-out (its id is deterministic: book, hand-off, position)."""
    return fanout.run_page(book_id, page, position)


@task("mail.resend", max_retries=3)
def resend(book_id: str, pairs: list[list[str]], attempt: int) -> dict[str, Any]:
    """Retry, alone, the destinations of a bulk call that SES refused for a passing reason."""
    return fanout.resend(book_id, pairs, attempt)


@task("mail.new_book", max_retries=3)
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


@task("subscriptions.send_confirmation", max_retries=3)
def send_confirmation(author_key: str, email: str) -> dict[str, Any]:
    """Mail the address a single-use link that confirms its subscription."""
    return consent.send_confirmation(author_key, email)
