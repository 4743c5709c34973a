"""The application's tasks. Each is declared once; routing lives in `tasks/routes.py`."""

from __future__ import annotations

import uuid
from typing import Any

from pynamodb.exceptions import DoesNotExist

from chalicelib import covers, mail
from chalicelib.models import Book
from chalicelib.observability import emit
from chalicelib.subscribers import emails_for
from chalicelib.tasks.dispatch import dispatch
from chalicelib.tasks.registry import task

_EMAIL_NAMESPACE = uuid.UUID("6f1d2a52-8a83-4c1c-9d53-1b8f0f2f5a10")


@task("covers.resize", max_retries=3)
def resize_cover(book_id: str, version: int) -> dict[str, Any]:
    """Make the cover's thumbnails in S3 and mark the book ready."""
    return covers.resize(book_id, version)


@task("books.notify_subscribers", max_retries=3)
def notify_subscribers(book_id: str) -> dict[str, Any]:
    """Fan out one email task per subscriber of the book's authors."""
    try:
        book = Book.get(book_id)
    except DoesNotExist:
        return {"emails": 0, "skipped": "book deleted"}
    recipients = sorted({email for author in book.authors for email in emails_for(author)})
    signatures = [
        send_new_book_email.s(book_id, email, task_id=str(uuid.uuid5(_EMAIL_NAMESPACE, f"{book_id}:{email}")))
        for email in recipients
    ]
    return {"emails": len(dispatch(signatures)) if signatures else 0}


@task("mail.new_book", max_retries=3)
def send_new_book_email(book_id: str, email: str) -> dict[str, Any]:
    """Tell one subscriber about a new book."""
    try:
        book = Book.get(book_id)
    except DoesNotExist:
        return {"skipped": "book deleted"}
    authors = ", ".join(book.authors)
    text = f"A new book by {authors} is on the shelf: {book.title}\n\n{book.description or ''}".rstrip() + "\n"
    message_id = mail.send_email(email, f"New book: {book.title}", text)
    emit("EmailsSent")
    return {"message_id": message_id, "to": email}
