"""The stage's infrastructure, described once: what both executors build.

Plain data and no AWS call. `infra.local` creates it idempotently through the APIs (the
embedded emulator, LocalStack, MiniStack, or AWS before `chalice deploy`) and
`infra.cloudformation` writes it as the merge template of `chalice package`: the shape of
chalice's own deployer, whose app graph (chalice/deploy/models.py) a planner and an
executor turn into API calls. Table keys, indexes and TTL come from the PynamoDB models;
names and queue limits from the stage's settings (`chalicelib/platform/config.py`).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Literal

from pynamodb.attributes import TTLAttribute
from pynamodb.models import Model

from chalicelib.covers.upload.events import UPLOADS_PREFIX
from chalicelib.platform.config import QueueSettings, Settings

KeyType = Literal["HASH", "RANGE"]

#: How long a work queue keeps a message, and a dead-letter queue (SQS's maximum) one that failed for good.
WORK_RETENTION_SECONDS = 4 * 24 * 3600
DEAD_LETTER_RETENTION_SECONDS = 14 * 24 * 3600
#: Long polling of the work queues (the most SQS allows).
RECEIVE_WAIT_SECONDS = 20
#: Alarm when the oldest message of a queue is older than this (a template parameter on AWS).
OLDEST_MESSAGE_ALARM_SECONDS = {"media": 600, "default": 900}


def logical_id(name: str) -> str:
    """A CloudFormation logical id from a name (`book-authors` -> `BookAuthors`)."""
    return "".join(part.capitalize() for part in name.replace("_", "-").split("-"))


@dataclass(frozen=True)
class Key:
    attribute: str
    key_type: KeyType


@dataclass(frozen=True)
class Index:
    """A global secondary index; `projection` as DynamoDB takes it."""

    name: str
    keys: tuple[Key, ...]
    projection: dict[str, Any]


@dataclass(frozen=True)
class Table:
    """A DynamoDB table on demand. Backups (PITR) and encryption with AWS's key are AWS-only (template)."""

    logical_id: str
    name: str
    attributes: tuple[tuple[str, str], ...]  # (name, S|N|B) of every key attribute
    keys: tuple[Key, ...]
    indexes: tuple[Index, ...]
    ttl_attribute: str | None


@dataclass(frozen=True)
class DeadLetterQueue:
    name: str
    retention_seconds: int = DEAD_LETTER_RETENTION_SECONDS


@dataclass(frozen=True)
class Queue:
    """A work queue and the DLQ it redrives to after `max_receive_count` receives."""

    key: str
    logical_id: str
    name: str
    visibility_timeout: int
    max_receive_count: int
    dead_letter: DeadLetterQueue
    retention_seconds: int = WORK_RETENTION_SECONDS
    receive_wait_seconds: int = RECEIVE_WAIT_SECONDS


@dataclass(frozen=True)
class CorsRule:
    origins: tuple[str, ...]
    methods: tuple[str, ...]
    headers: tuple[str, ...]
    expose_headers: tuple[str, ...]
    max_age_seconds: int


@dataclass(frozen=True)
class ExpiryRule:
    """Objects under `prefix` (and incomplete multipart uploads) expire after `days`."""

    id: str
    prefix: str
    days: int


@dataclass(frozen=True)
class QueueNotification:
    """The bucket sends `events` on keys under `prefix` to the queue `queue_key`."""

    id: str
    queue_key: str
    events: tuple[str, ...]
    prefix: str


@dataclass(frozen=True)
class Bucket:
    """The media bucket: private and encrypted (AES256) everywhere; TLS-only and owner-enforced on AWS."""

    logical_id: str
    name: str
    cors: tuple[CorsRule, ...]
    lifecycle: tuple[ExpiryRule, ...]
    notifications: tuple[QueueNotification, ...]


@dataclass(frozen=True)
class Alarm:
    """A CloudWatch alarm on one queue's metric (Maximum over 60 s periods, above the threshold)."""

    logical_id: str
    name: str
    description: str
    queue_name: str
    metric: str
    evaluation_periods: int
    threshold: float
    threshold_parameter: str | None = None  # the template's parameter (default: threshold) that sets it


@dataclass(frozen=True)
class Infrastructure:
    """Every resource of one stage, besides what chalice makes (functions, roles, API, schedules)."""

    stage: str
    app_name: str
    tables: tuple[Table, ...]
    queues: tuple[Queue, ...]
    bucket: Bucket
    alarm_topic: str
    alarms: tuple[Alarm, ...]
    dashboard: str
    mail_sender: str
    signing_secret: str
    api_keys_parameter: str

    def queue(self, key: str) -> Queue:
        return next(q for q in self.queues if q.key == key)


def _sorted_keys(schema: Sequence[Mapping[str, Any]]) -> tuple[Key, ...]:
    ordered = sorted(schema, key=lambda k: k["KeyType"] != "HASH")
    return tuple(Key(k["AttributeName"], "HASH" if k["KeyType"] == "HASH" else "RANGE") for k in ordered)


def ttl_attribute(model: type[Model]) -> str | None:
    """The model's TTLAttribute, by its name in DynamoDB (PynamoDB allows one per model)."""
    for name, attribute in model.get_attributes().items():
        if isinstance(attribute, TTLAttribute):
            return attribute.attr_name or name
    return None


def table(model: type[Model], prefix: str) -> Table:
    """A table exactly as the PynamoDB model defines it."""
    schema = model._get_schema()
    name = model.Meta.table_name
    return Table(
        logical_id=f"{logical_id(name.removeprefix(f'{prefix}-'))}Table",
        name=name,
        attributes=tuple((a["AttributeName"], a["AttributeType"]) for a in schema["attribute_definitions"]),
        keys=_sorted_keys(schema["key_schema"]),
        indexes=tuple(
            Index(i["index_name"], _sorted_keys(i["key_schema"]), dict(i["projection"]))
            for i in schema["global_secondary_indexes"]
        ),
        ttl_attribute=ttl_attribute(model),
    )


def queue(settings: QueueSettings) -> Queue:
    return Queue(
        key=settings.key,
        logical_id=f"{logical_id(settings.key)}Queue",
        name=settings.name,
        visibility_timeout=settings.visibility_timeout,
        max_receive_count=settings.max_receive_count,
        dead_letter=DeadLetterQueue(settings.dlq_name),
    )


def bucket(settings: Settings) -> Bucket:
    """Direct uploads: browsers POST under uploads/ (CORS), S3 tells the media queue, leftovers expire."""
    return Bucket(
        logical_id="MediaBucket",
        name=settings.media_bucket,
        cors=(
            CorsRule(
                origins=settings.upload_cors_origins,
                methods=("POST",),
                headers=("*",),
                expose_headers=("ETag", "Location"),
                max_age_seconds=3600,
            ),
        ),
        lifecycle=(ExpiryRule("abandoned-uploads", UPLOADS_PREFIX, settings.upload_retention_days),),
        notifications=(
            QueueNotification("cover-uploads", settings.media.key, ("s3:ObjectCreated:*",), UPLOADS_PREFIX),
        ),
    )


def alarms(queues: tuple[Queue, ...]) -> tuple[Alarm, ...]:
    """For each queue: its DLQ is not empty; its oldest message waits too long."""
    found: list[Alarm] = []
    for q in queues:
        base = logical_id(q.key)
        found.append(
            Alarm(
                logical_id=f"{base}DeadLetterAlarm",
                name=f"{q.dead_letter.name}-not-empty",
                description=f"Messages in {q.dead_letter.name}: tasks failed for good. "
                "Read GET /tasks?status=FAILURE, fix, then POST /queues/{name}/redrive.",
                queue_name=q.dead_letter.name,
                metric="ApproximateNumberOfMessagesVisible",
                evaluation_periods=1,
                threshold=0,
            )
        )
        found.append(
            Alarm(
                logical_id=f"{base}OldestMessageAlarm",
                name=f"{q.name}-oldest-message-age",
                description=f"The oldest message in {q.name} waits too long: consumers lag or fail.",
                queue_name=q.name,
                metric="ApproximateAgeOfOldestMessage",
                evaluation_periods=5,
                threshold=OLDEST_MESSAGE_ALARM_SECONDS.get(q.key, 900),
                threshold_parameter=f"{base}OldestMessageAlarmSeconds",
            )
        )
    return tuple(found)


def build(settings: Settings) -> Infrastructure:
    """The stage's infrastructure from its settings and the app's PynamoDB models."""
    from chalicelib.tables import ALL_MODELS

    prefix = f"{settings.app_name}-{settings.stage}"
    queues = tuple(queue(q) for q in settings.queues.values())
    return Infrastructure(
        stage=settings.stage,
        app_name=settings.app_name,
        tables=tuple(table(model, prefix) for model in ALL_MODELS),
        queues=queues,
        bucket=bucket(settings),
        alarm_topic=f"{queues[0].name}-alarms",
        alarms=alarms(queues),
        dashboard=prefix,
        mail_sender=settings.mail_sender,
        signing_secret=settings.signing_secret_name,
        api_keys_parameter=settings.api_keys_parameter,
    )


def upload_queue_policy(queue_arn: Any, source_arn: Any, account_id: Any) -> dict[str, Any]:
    """The queue policy that lets S3 (this bucket, this account only) send its event notifications:
    one document for both executors, given concrete ARNs locally and CloudFormation's references
    (`Fn::GetAtt`, `Fn::Sub`, `Ref`) in the template."""
    return {
        "Version": "2012-10-17",
        "Statement": [
            {
                "Sid": "S3UploadEvents",
                "Effect": "Allow",
                "Principal": {"Service": "s3.amazonaws.com"},
                "Action": "sqs:SendMessage",
                "Resource": queue_arn,
                "Condition": {
                    "ArnEquals": {"aws:SourceArn": source_arn},
                    "StringEquals": {"aws:SourceAccount": account_id},
                },
            }
        ],
    }
