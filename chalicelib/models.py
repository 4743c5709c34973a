"""DynamoDB tables, declared with PynamoDB."""

from __future__ import annotations

from datetime import UTC, datetime

from pynamodb.attributes import (
    JSONAttribute,
    ListAttribute,
    MapAttribute,
    NumberAttribute,
    TTLAttribute,
    UnicodeAttribute,
    UTCDateTimeAttribute,
)
from pynamodb.indexes import AllProjection, GlobalSecondaryIndex
from pynamodb.models import Model

from chalicelib.config import get_settings

_settings = get_settings()


def utcnow() -> datetime:
    """The current time, timezone-aware."""
    return datetime.now(UTC)


class _Meta:
    region = _settings.region
    host = None  # botocore reads AWS_ENDPOINT_URL_DYNAMODB, then AWS_ENDPOINT_URL (chalicelib/aws.py)
    billing_mode = "PAY_PER_REQUEST"
    connect_timeout_seconds = 5
    read_timeout_seconds = 20
    max_retry_attempts = 3


class Book(Model):
    """A book; `thumbnails` maps `<size>.<format>` to its S3 key once resized."""

    class Meta(_Meta):
        table_name = _settings.books_table

    id = UnicodeAttribute(hash_key=True)
    owner = UnicodeAttribute()
    title = UnicodeAttribute()
    authors = ListAttribute(of=UnicodeAttribute)
    description = UnicodeAttribute(null=True)
    cover_key = UnicodeAttribute(null=True)
    cover_version = NumberAttribute(default=0)
    cover_status = UnicodeAttribute(default="none")
    cover_error = UnicodeAttribute(null=True)
    thumbnails = MapAttribute(null=True)
    created_at = UTCDateTimeAttribute(default_for_new=utcnow)
    updated_at = UTCDateTimeAttribute(default=utcnow)


class BookAuthor(Model):
    """One row per (author, book): the index behind `GET /books?author=`."""

    class Meta(_Meta):
        table_name = _settings.book_authors_table

    author_key = UnicodeAttribute(hash_key=True)
    sort_key = UnicodeAttribute(range_key=True)
    book_id = UnicodeAttribute()


class Subscriber(Model):
    """An email address that wants to hear of new books by an author."""

    class Meta(_Meta):
        table_name = _settings.subscribers_table

    author_key = UnicodeAttribute(hash_key=True)
    email = UnicodeAttribute(range_key=True)
    author = UnicodeAttribute()
    owner = UnicodeAttribute()
    created_at = UTCDateTimeAttribute(default_for_new=utcnow)


class TaskStatusIndex(GlobalSecondaryIndex["TaskRecord"]):
    """Tasks by status, newest first."""

    class Meta:
        index_name = "status-created-index"
        projection = AllProjection()

    status = UnicodeAttribute(hash_key=True)
    created_at = UTCDateTimeAttribute(range_key=True)


class TaskNameIndex(GlobalSecondaryIndex["TaskRecord"]):
    """Tasks by task name, newest first."""

    class Meta:
        index_name = "name-created-index"
        projection = AllProjection()

    name = UnicodeAttribute(hash_key=True)
    created_at = UTCDateTimeAttribute(range_key=True)


class TaskRecord(Model):
    """The result record of one task: the serverless results backend."""

    class Meta(_Meta):
        table_name = _settings.tasks_table

    id = UnicodeAttribute(hash_key=True)
    name = UnicodeAttribute()
    queue = UnicodeAttribute()
    status = UnicodeAttribute()
    owner = UnicodeAttribute(null=True)
    args = JSONAttribute(default=list)
    kwargs = JSONAttribute(default=dict)
    result = JSONAttribute(null=True)
    error = UnicodeAttribute(null=True)
    traceback = UnicodeAttribute(null=True)
    attempts = NumberAttribute(default=0)
    claim_token = UnicodeAttribute(null=True)
    lease_until = NumberAttribute(null=True)
    created_at = UTCDateTimeAttribute(default_for_new=utcnow)
    started_at = UTCDateTimeAttribute(null=True)
    finished_at = UTCDateTimeAttribute(null=True)
    updated_at = UTCDateTimeAttribute(default=utcnow)
    expires_at = TTLAttribute(null=True)

    status_index = TaskStatusIndex()
    name_index = TaskNameIndex()


ALL_MODELS: tuple[type[Model], ...] = (Book, BookAuthor, Subscriber, TaskRecord)
