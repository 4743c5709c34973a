"""The application's tasks. Each is declared once; routing lives in `tasks/routes.py`."""

from __future__ import annotations

import uuid
from typing import Any

from pynamodb.exceptions import DoesNotExist

from chalicelib import consent, covers, mail, tokens
from chalicelib.authors import author_key
from chalicelib.models import Book, Subscriber
from chalicelib.observability import emit
from chalicelib.tasks.dispatch import dispatch
from chalicelib.tasks.registry import task

_EMAIL_NAMESPACE = uuid.UUID("6f1d2a52-8a83-4c1c-9d53-1b8f0f2f5a10")


@task("covers.resize", max_retries=3)
def resize_cover(book_id: str, version: int) -> dict[str, Any]:
    """Make the cover's thumbnails in S3 and mark the book ready."""
    return covers.resize(book_id, version)


@task("books.notify_subscribers", max_retries=3)
def notify_subscribers(book_id: str) -> dict[str, Any]:
    """Fan out one email task per confirmed subscriber of the book's authors."""
    try:
        book = Book.get(book_id)
    except DoesNotExist:
        return {"emails": 0, "skipped": "book deleted"}
    recipients: dict[str, str] = {}
    for author in book.authors:
        key = author_key(author)
        for sub in Subscriber.query(key, filter_condition=Subscriber.status == consent.CONFIRMED):
            recipients.setdefault(sub.email, key)
    signatures = [
        send_new_book_email.s(book_id, email, key, task_id=str(uuid.uuid5(_EMAIL_NAMESPACE, f"{book_id}:{email}")))
        for email, key in sorted(recipients.items())
    ]
    return {"emails": len(dispatch(signatures, book.owner)) if signatures else 0}


@task("mail.new_book", max_retries=3)
def send_new_book_email(book_id: str, email: str, subscribed_to: str) -> dict[str, Any]:
    """Tell one subscriber about a new book, with a link that stops these mails."""
    try:
        book = Book.get(book_id)
    except DoesNotExist:
        return {"skipped": "book deleted"}
    unsubscribe = tokens.unsubscribe_url(subscribed_to, email)
    authors = ", ".join(book.authors)
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
