"""New-book mail to up to 50 recipients in one SES call, each with their own unsubscribe link.

SES v2 `SendBulkEmail` is the one bulk call that carries headers per destination
(`ReplacementHeaders`), so every recipient gets List-Unsubscribe / List-Unsubscribe-Post
for their own subscription. SES v1 `SendBulkTemplatedEmail` has no headers, and raw
per-recipient sends cost one call each. The template is sent inline (no template
resource to deploy); SES substitutes `{{name}}` from each entry's data. Every value is
cleaned here first (`mail.header_text` for what reaches the subject), because SES does
not promise to.

Where the endpoint lacks `SendBulkEmail` (LocalStack Community has no SES v2), the same
mail goes out one raw `SendEmail` per recipient: slower and more calls, same headers.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from typing import Any

from botocore.exceptions import ClientError

from chalicelib.books.models import Book
from chalicelib.platform import aws_errors
from chalicelib.platform import mailer as mail
from chalicelib.platform.aws import client
from chalicelib.platform.aws_errors import Fault
from chalicelib.platform.config import get_settings
from chalicelib.platform.observability import logger
from chalicelib.subscriptions import tokens

MAX_DESTINATIONS = 50
MAX_DESCRIPTION = 2000
SUBJECT = "New book: {{title}}"
TEXT = (
    "A new book by {{authors}} is on the shelf: {{title}}\n\n{{description}}\n\nStop these mails: {{unsubscribe_url}}\n"
)
# A destination with one of these statuses can never be mailed by retrying; other failures are retried alone.
PERMANENT_STATUSES = frozenset({"MESSAGE_REJECTED", "INVALID_PARAMETER"})
_mode: dict[str, bool] = {"bulk": True}


@dataclass
class Outcome:
    """Per-destination results of one send."""

    mailed: list[str] = field(default_factory=list)
    failed: list[tuple[str, str]] = field(default_factory=list)  # permanent: (email, reason)
    retry: list[tuple[str, str]] = field(default_factory=list)  # transient: (email, author key)
    calls: int = 0


def book_data(book: Book) -> dict[str, str]:
    """Template data shared by every recipient of a book, already cleaned."""
    description = mail.body_text(book.description or "")
    if len(description) > MAX_DESCRIPTION:
        description = description[: MAX_DESCRIPTION - 1] + "…"
    return {
        "title": mail.header_text(book.title),
        "authors": mail.header_text(", ".join(str(a) for a in book.authors)),
        "description": description,
    }


def _headers(url: str) -> list[dict[str, str]]:
    return [{"Name": k, "Value": v} for k, v in mail.unsubscribe_headers(url).items()]


def classify(recipients: list[tuple[str, str]], results: list[dict[str, Any]]) -> Outcome:
    """Sort SES's per-entry results (same order as the entries) into mailed, failed and retry."""
    outcome = Outcome()
    for (email, key), result in zip(recipients, results, strict=True):
        status = result.get("Status", "FAILED")
        if status == "SUCCESS":
            outcome.mailed.append(email)
        elif status in PERMANENT_STATUSES:
            outcome.failed.append((email, f"{status}: {result.get('Error', '')}".strip(": ")))
        else:
            outcome.retry.append((email, key))
    return outcome


def send_new_book(book: Book, recipients: list[tuple[str, str]]) -> Outcome:
    """Mail (email, subscribed author key) pairs about `book`; raises only when the whole call failed."""
    if not recipients:
        return Outcome()
    if len(recipients) > MAX_DESTINATIONS:
        raise ValueError(f"at most {MAX_DESTINATIONS} destinations per call")
    shared = book_data(book)
    recipients, unmailable = _mailable(recipients)
    outcome = Outcome()
    if recipients and _mode["bulk"]:
        try:
            outcome = _bulk(shared, recipients)
        except ClientError as exc:
            if aws_errors.classify(exc) is not Fault.UNSUPPORTED:
                raise
            logger.warning("SendBulkEmail is not available here; sending one raw mail per recipient")
            _mode["bulk"] = False
    if recipients and not _mode["bulk"]:
        outcome = _one_by_one(shared, recipients)
    outcome.failed.extend(unmailable)
    return outcome


def _mailable(recipients: list[tuple[str, str]]) -> tuple[list[tuple[str, str]], list[tuple[str, str]]]:
    """Recipients that can be mailed, and (email, reason) of those that never can (a row
    stored before the API refused non-ASCII local parts): failed for good, not retried."""
    good, never = [], []
    for email, key in recipients:
        try:
            mail.mailbox(email)
        except mail.UnmailableAddress as exc:
            never.append((email, f"INVALID_PARAMETER: {exc}"))
        else:
            good.append((email, key))
    return good, never


def _bulk(shared: dict[str, str], recipients: list[tuple[str, str]]) -> Outcome:
    entries = []
    for email, key in recipients:
        url = tokens.unsubscribe_url(key, email)
        entries.append(
            {
                "Destination": {"ToAddresses": [mail.mailbox(email)]},  # the domain in IDNA
                "ReplacementEmailContent": {
                    "ReplacementTemplate": {"ReplacementTemplateData": json.dumps({**shared, "unsubscribe_url": url})}
                },
                "ReplacementHeaders": _headers(url),
            }
        )
    response = client("sesv2").send_bulk_email(
        FromEmailAddress=get_settings().mail_sender,
        DefaultContent={
            "Template": {
                "TemplateContent": {"Subject": SUBJECT, "Text": TEXT},
                "TemplateData": json.dumps({**shared, "unsubscribe_url": ""}),
            }
        },
        BulkEmailEntries=entries,
    )
    outcome = classify(recipients, response["BulkEmailEntryResults"])
    outcome.calls = 1
    return outcome


def _one_by_one(shared: dict[str, str], recipients: list[tuple[str, str]]) -> Outcome:
    outcome = Outcome()
    for email, key in recipients:
        url = tokens.unsubscribe_url(key, email)
        text = TEXT
        for name, value in {**shared, "unsubscribe_url": url}.items():
            text = text.replace("{{" + name + "}}", value)
        try:
            mail.send_email(email, f"New book: {shared['title']}", text, mail.unsubscribe_headers(url))
        except ClientError as exc:
            if aws_errors.code_of(exc) == "MessageRejected":
                outcome.failed.append((email, f"MESSAGE_REJECTED: {exc}"))
            else:
                outcome.retry.append((email, key))
        else:
            outcome.mailed.append(email)
        outcome.calls += 1
    return outcome
