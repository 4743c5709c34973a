"""Every DynamoDB table of the app, for the tools that create them and the template that declares them."""

from __future__ import annotations

from pynamodb.models import Model

from chalicelib.books.models import Book, BookAuthor
from chalicelib.imports.models import ImportItem
from chalicelib.mail.models import MailState
from chalicelib.platform.dashboard_session_model import DashboardSession
from chalicelib.platform.idempotency_model import IdempotencyRecord
from chalicelib.subscriptions.models import Subscriber
from chalicelib.tasks.models import TaskRecord

ALL_MODELS: tuple[type[Model], ...] = (
    Book,
    BookAuthor,
    Subscriber,
    TaskRecord,
    IdempotencyRecord,
    MailState,
    DashboardSession,
    ImportItem,
)
