"""Task records and their indexes, declared with PynamoDB."""

from __future__ import annotations

from pynamodb.attributes import (
    JSONAttribute,
    ListAttribute,
    NumberAttribute,
    TTLAttribute,
    UnicodeAttribute,
    UTCDateTimeAttribute,
)
from pynamodb.indexes import AllProjection, GlobalSecondaryIndex
from pynamodb.models import Model

from chalicelib.platform.dynamodb import TableMeta, utcnow


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


class TaskWaitingIndex(GlobalSecondaryIndex["TaskRecord"]):
    """Tasks whose message waits in a queue, by the moment it is (or becomes) visible.

    Sparse: `waiting_key` (`<queue>#<shard>`) is set while a record is PENDING or RETRY with a
    message in its queue, and removed when a worker claims it or it ends. So the oldest
    visible message of a queue is one Query per shard (`queued_at <= now`, ascending, limit 1)
    at any table size, and a delayed task (an upload's expiry) or an ingest that waits for its
    upload is not counted before its message can be received.
    """

    class Meta:
        index_name = "waiting-queued-index"
        projection = AllProjection()

    waiting_key = UnicodeAttribute(hash_key=True)
    queued_at = NumberAttribute(range_key=True)


class TaskRecord(Model):
    """The result record of one task: the serverless results backend."""

    class Meta(TableMeta):
        table_setting = "tasks_table"

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
    links = JSONAttribute(null=True)  # link / link_error / chord membership (tasks/canvas.py)
    outbox_eta = NumberAttribute(null=True)  # epoch seconds a countdown task is due (while in the outbox)
    waiting_key = UnicodeAttribute(null=True)  # `<queue>#<shard>` while its message waits (TaskWaitingIndex)
    queued_at = NumberAttribute(null=True)  # epoch seconds its message is visible from (countdown, backoff)
    invocation = UnicodeAttribute(null=True)  # the Lambda request id of its latest attempt
    parent_id = UnicodeAttribute(null=True)  # the task that sent it (a fan-out page's previous page, a chord's member)
    children = ListAttribute(of=UnicodeAttribute, null=True)  # tasks it sent (at most MAX_CHILDREN kept)
    children_sent = NumberAttribute(null=True)  # how many it sent in all
    rerun_of = UnicodeAttribute(null=True)  # the run this one repeats (the dashboard's "run again")
    reruns = ListAttribute(of=UnicodeAttribute, null=True)  # the runs that repeated this one, oldest first

    status_index = TaskStatusIndex()
    name_index = TaskNameIndex()
    book_index = TaskBookIndex()
    day_index = TaskDayIndex()
    outbox_index = TaskOutboxIndex()
    waiting_index = TaskWaitingIndex()
