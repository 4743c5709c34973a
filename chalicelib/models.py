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
    thumbnails: MapAttribute[str, str] = MapAttribute(null=True)  # size name -> S3 key
    created_at = UTCDateTimeAttribute(default_for_new=utcnow)
    updated_at = UTCDateTimeAttribute(default=utcnow)
    # Bumped by every API write; writes are conditioned on the revision they read, so two
    # concurrent updates cannot interleave (the loser gets 409). Absent on books written
    # before revisions existed, which count as revision 0.
    revision = NumberAttribute(null=True)


class BookAuthor(Model):
    """One row per (author, book): the index behind `GET /books?author=`."""

    class Meta(_Meta):
        table_name = _settings.book_authors_table

    author_key = UnicodeAttribute(hash_key=True)
    sort_key = UnicodeAttribute(range_key=True)
    book_id = UnicodeAttribute()


class Subscriber(Model):
    """An email address that wants to hear of new books by an author (double opt-in).

    `status` is pending → confirmed → unsubscribed (→ confirmed again only through a new
    confirmation link). Only a SHA-256 of the live confirmation token is kept.
    """

    class Meta(_Meta):
        table_name = _settings.subscribers_table

    author_key = UnicodeAttribute(hash_key=True)
    email = UnicodeAttribute(range_key=True)
    author = UnicodeAttribute()
    owner = UnicodeAttribute()
    status = UnicodeAttribute(default="pending")
    confirm_hash = UnicodeAttribute(null=True)
    confirm_expires = NumberAttribute(null=True)
    confirm_sent_at = NumberAttribute(null=True)
    used_hash = UnicodeAttribute(null=True)
    confirmed_at = UTCDateTimeAttribute(null=True)
    unsubscribed_at = UTCDateTimeAttribute(null=True)
    created_at = UTCDateTimeAttribute(default_for_new=utcnow)


class MailState(Model):
    """Mail bookkeeping that is not a task: a fan-out's progress and counts, the SES rate bucket.

    `pk` is `fanout#<book id>` or `ratelimit#ses`; one item per fan-out keeps the writes
    per recipient low (one update per bulk call of up to 50).
    """

    class Meta(_Meta):
        table_name = _settings.mail_table

    pk = UnicodeAttribute(hash_key=True)
    owner = UnicodeAttribute(null=True)
    root_task = UnicodeAttribute(null=True)
    page = UnicodeAttribute(null=True)
    position = JSONAttribute(null=True)
    next_page = UnicodeAttribute(null=True)
    complete = NumberAttribute(default=0)
    mailed = NumberAttribute(default=0)
    failed = NumberAttribute(default=0)
    retrying = NumberAttribute(default=0)
    pages = NumberAttribute(default=0)
    failures = ListAttribute(of=UnicodeAttribute, null=True)
    retry_pending = JSONAttribute(null=True)
    tat = NumberAttribute(null=True)
    created_at = UTCDateTimeAttribute(default_for_new=utcnow)
    updated_at = UTCDateTimeAttribute(default=utcnow)
    expires_at = TTLAttribute(null=True)


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


class TaskBookIndex(GlobalSecondaryIndex["TaskRecord"]):
    """Tasks about one book, newest first (sparse: only tasks with a book_id)."""

    class Meta:
        index_name = "book-created-index"
        projection = AllProjection()

    book_id = UnicodeAttribute(hash_key=True)
    created_at = UTCDateTimeAttribute(range_key=True)


class TaskDayIndex(GlobalSecondaryIndex["TaskRecord"]):
    """All tasks newest first: partitions per UTC day and shard, read day by day backwards.

    A day bucket keeps `GET /tasks` a Query at any table size (a Scan has no order); the
    TASK_DAY_SHARDS shards of a day (`2026-11-30#0` …) spread a burst of new tasks over
    several partition keys (each takes ~1,000 writes/s), and a page merges them.
    """

    class Meta:
        index_name = "bucket-created-index"
        projection = AllProjection()

    created_bucket = UnicodeAttribute(hash_key=True)
    created_at = UTCDateTimeAttribute(range_key=True)


class TaskOutboxIndex(GlobalSecondaryIndex["TaskRecord"]):
    """The transactional outbox: records written but not yet acknowledged as sent to SQS.

    Sparse (only records that carry `outbox_shard` are in it, for the milliseconds between
    the commit and the send, or until the relay re-sends them), so the relay reads only
    stranded work however many tasks exist; sharded so a burst of dispatches spreads over
    several partition keys instead of one hot one.
    """

    class Meta:
        index_name = "outbox-due-index"
        projection = AllProjection()

    outbox_shard = UnicodeAttribute(hash_key=True)
    outbox_due = NumberAttribute(range_key=True)


class TaskRecord(Model):
    """The result record of one task: the serverless results backend."""

    class Meta(_Meta):
        table_name = _settings.tasks_table

    id = UnicodeAttribute(hash_key=True)
    name = UnicodeAttribute()
    queue = UnicodeAttribute()
    status = UnicodeAttribute()
    owner = UnicodeAttribute(null=True)
    book_id = UnicodeAttribute(null=True)
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
    created_bucket = UnicodeAttribute(null=True)
    outbox_shard = UnicodeAttribute(null=True)
    outbox_due = NumberAttribute(null=True)

    status_index = TaskStatusIndex()
    name_index = TaskNameIndex()
    book_index = TaskBookIndex()
    day_index = TaskDayIndex()
    outbox_index = TaskOutboxIndex()


class IdempotencyRecord(Model):
    """The first answer to a request sent with an `Idempotency-Key`, replayed to retries.

    `key` is a hash of (user, route, client key); `fingerprint` a hash of the request, so
    reusing a key for a different request is detected. Written in the same transaction as
    the work it answers for; expires by TTL.
    """

    class Meta(_Meta):
        table_name = _settings.idempotency_table

    key = UnicodeAttribute(hash_key=True)
    owner = UnicodeAttribute()
    scope = UnicodeAttribute()
    fingerprint = UnicodeAttribute()
    status_code = NumberAttribute()
    response = JSONAttribute()
    created_at = UTCDateTimeAttribute(default_for_new=utcnow)
    expires_at = TTLAttribute()


ALL_MODELS: tuple[type[Model], ...] = (Book, BookAuthor, Subscriber, TaskRecord, IdempotencyRecord, MailState)
