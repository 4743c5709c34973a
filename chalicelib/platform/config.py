"""Every setting of the application, read from environment variables in one place.

The stage's values live in `.chalice/config.json`; Lambda and `chalice local` export
them as environment variables, and so do the local runner and the tests.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from functools import lru_cache

#: The default of every setting that has a fixed one, by its environment variable: the one
#: place defaults are written. `.chalice/config.json` may only repeat them at its top level and
#: override them per stage (`make package`/`make deploy` refuse drift: infra/stage.py), and
#: the tests set only what differs (tests/conftest.py). Names derived from RESOURCE_PREFIX are
#: computed in get_settings.
DEFAULTS: dict[str, str] = {
    "APP_NAME": "bookshelf",
    "STAGE": "local",
    "MEDIA_BATCH_SIZE": "1",
    "MEDIA_MAX_CONCURRENCY": "2",
    "MEDIA_MAX_RECEIVE_COUNT": "5",
    "MEDIA_VISIBILITY_TIMEOUT": "360",
    "DEFAULT_BATCH_SIZE": "10",
    "DEFAULT_MAX_CONCURRENCY": "10",
    "DEFAULT_MAX_RECEIVE_COUNT": "5",
    "DEFAULT_VISIBILITY_TIMEOUT": "180",
    "TASK_TTL_DAYS": "14",
    "RETRY_BACKOFF_BASE": "5",
    "RETRY_BACKOFF_CAP": "900",
    "MAX_COVER_BYTES": "4194304",
    "MAX_BODY_BYTES": "6291456",
    "PRESIGN_TTL_SECONDS": "900",
    "THUMBNAIL_SIZE": "100",
    "DLQ_RECONCILE_MINUTES": "5",
    "CONFIRM_TOKEN_TTL_SECONDS": "259200",
    "CONFIRM_RESEND_SECONDS": "300",
    "SES_MAX_SEND_RATE": "0",
    "FANOUT_SAFETY_MS": "3000",
    "FANOUT_PARALLEL_SENDS": "10",
    "FANOUT_SEGMENT_SIZE": "5000",
    "DASHBOARD_SESSION_SECONDS": "900",
    "WORKER_METRICS": "runtime",
    "WORKER_METRICS_MINUTES": "60",
    "MAX_UPLOAD_BYTES": "26214400",
    "UPLOAD_TTL_SECONDS": "900",
    "UPLOAD_EXPIRY_MARGIN_SECONDS": "300",
    "UPLOAD_RETENTION_DAYS": "1",
    "IDEMPOTENCY_TTL_HOURS": "24",
    "OUTBOX_RELAY_MINUTES": "1",
    "OUTBOX_RELAY_AFTER_SECONDS": "60",
    "OUTBOX_SHARDS": "8",
    "OUTBOX_AWAIT_COMMIT_SECONDS": "30",
    "TASK_DAY_SHARDS": "4",
    "TASKS_EAGER": "false",
    "REPORT_BATCH_ITEM_FAILURES": "true",
    "MAIL_SENDER": "books@example.com",
    "AUTH_MODE": "api_key",
    "LOCAL_API_KEYS": "",
    "PUBLIC_BASE_URL": "http://127.0.0.1:8000",
    "UPLOAD_CORS_ORIGINS": "*",
}
#: Exported to the functions for their other readers: Powertools and the template (SNAPSTART).
EXPORTED: dict[str, str] = {
    "POWERTOOLS_SERVICE_NAME": "bookshelf",
    "POWERTOOLS_METRICS_NAMESPACE": "Bookshelf",
    "SNAPSTART": "false",
}
#: Settings with no fixed default (computed from RESOURCE_PREFIX, or none): a stage may set them.
DERIVED = frozenset(
    {
        "RESOURCE_PREFIX",
        "BOOKS_TABLE",
        "BOOK_AUTHORS_TABLE",
        "SUBSCRIBERS_TABLE",
        "TASKS_TABLE",
        "MEDIA_BUCKET",
        "MEDIA_QUEUE_NAME",
        "MEDIA_DLQ_NAME",
        "DEFAULT_QUEUE_NAME",
        "DEFAULT_DLQ_NAME",
        "API_KEYS_PARAMETER",
        "SIGNING_SECRET_NAME",
        "MAIL_TABLE",
        "DASHBOARD_SESSION_TABLE",
        "IDEMPOTENCY_TABLE",
        "IMPORTS_TABLE",
    }
)


def _raw(name: str) -> str:
    raw = os.environ.get(name)
    return raw if raw not in (None, "") else DEFAULTS[name]


def _str(name: str) -> str:
    return os.environ.get(name, DEFAULTS[name])


def _bool(name: str) -> bool:
    return _raw(name).strip().lower() in {"1", "true", "yes", "on"}


def _int(name: str) -> int:
    return int(_raw(name))


def _float(name: str) -> float:
    return float(_raw(name))


@dataclass(frozen=True)
class QueueSettings:
    """One work queue: its name, dead-letter queue and consumer limits."""

    key: str
    name: str
    dlq_name: str
    batch_size: int
    max_concurrency: int
    max_receive_count: int
    visibility_timeout: int


@dataclass(frozen=True)
class Settings:
    """Application settings for one stage."""

    app_name: str
    stage: str
    region: str
    endpoint_url: str | None
    books_table: str
    book_authors_table: str
    subscribers_table: str
    tasks_table: str
    media_bucket: str
    media: QueueSettings
    default: QueueSettings
    mail_sender: str
    tasks_eager: bool
    task_ttl_days: int
    retry_backoff_base: float
    retry_backoff_cap: float
    max_cover_bytes: int
    max_body_bytes: int
    presign_ttl_seconds: int
    thumbnail_size: int
    reconcile_minutes: int
    auth_mode: str
    api_keys_parameter: str
    local_api_keys: str
    report_batch_item_failures: bool
    signing_secret_name: str
    # Consent and mail (subscriptions, links in mail, bulk sending)
    public_base_url: str
    mail_table: str
    confirm_token_ttl_seconds: int
    confirm_resend_seconds: int
    ses_max_send_rate: float
    fanout_safety_ms: int
    fanout_parallel_sends: int
    fanout_segment_size: int
    # Dashboard: admin session lifetime, and the table of live sessions (sign-out revokes).
    dashboard_session_seconds: int
    dashboard_session_table: str
    # Dashboard Workers panel: "runtime" (the counters of the local runtime registered in the
    # process: ops/local_runtime.py) or "cloudwatch" (deployed: CloudWatch metrics and the event
    # source mappings), over the last N minutes.
    worker_metrics: str
    worker_metrics_minutes: int
    # Direct cover uploads (presigned S3 POST); see the uploads block in get_settings.
    max_upload_bytes: int
    upload_ttl_seconds: int
    upload_expiry_margin_seconds: int
    upload_cors_origins: tuple[str, ...]
    upload_retention_days: int
    # Transactional outbox and Idempotency-Key (data integrity)
    idempotency_table: str
    # Bulk imports (POST /imports): the import records and their reports.
    imports_table: str
    idempotency_ttl_hours: int
    outbox_relay_minutes: int
    outbox_relay_after_seconds: int
    outbox_shards: int
    outbox_await_commit_seconds: int
    task_day_shards: int

    @property
    def queues(self) -> dict[str, QueueSettings]:
        """The work queues by their routing key (`media`, `default`)."""
        return {self.media.key: self.media, self.default.key: self.default}


def _queue(key: str, prefix: str) -> QueueSettings:
    upper = key.upper()
    name = os.environ.get(f"{upper}_QUEUE_NAME", f"{prefix}-{key}")
    return QueueSettings(
        key=key,
        name=name,
        dlq_name=os.environ.get(f"{upper}_DLQ_NAME", f"{name}-dlq"),
        batch_size=_int(f"{upper}_BATCH_SIZE"),
        max_concurrency=_int(f"{upper}_MAX_CONCURRENCY"),
        max_receive_count=_int(f"{upper}_MAX_RECEIVE_COUNT"),
        visibility_timeout=_int(f"{upper}_VISIBILITY_TIMEOUT"),
    )


def region() -> str:
    """The AWS region (Lambda sets AWS_REGION; boto's own variable is AWS_DEFAULT_REGION), read afresh
    and cached nowhere: PynamoDB asks a model's Meta for it when the model is declared (at import)."""
    return os.environ.get("AWS_REGION") or os.environ.get("AWS_DEFAULT_REGION") or "us-east-1"


@lru_cache(maxsize=1)
def get_settings() -> Settings:
    """Read the settings once per process, on first use: never at import (tests/unit/test_no_settings_at_import.py)."""
    app_name = _str("APP_NAME")
    stage = _str("STAGE")
    prefix = os.environ.get("RESOURCE_PREFIX", f"{app_name}-{stage}")
    return Settings(
        app_name=app_name,
        stage=stage,
        region=region(),
        endpoint_url=os.environ.get("AWS_ENDPOINT_URL") or None,
        books_table=os.environ.get("BOOKS_TABLE", f"{prefix}-books"),
        book_authors_table=os.environ.get("BOOK_AUTHORS_TABLE", f"{prefix}-book-authors"),
        subscribers_table=os.environ.get("SUBSCRIBERS_TABLE", f"{prefix}-subscribers"),
        tasks_table=os.environ.get("TASKS_TABLE", f"{prefix}-tasks"),
        media_bucket=os.environ.get("MEDIA_BUCKET", f"{prefix}-media"),
        media=_queue("media", prefix),
        default=_queue("default", prefix),
        mail_sender=_str("MAIL_SENDER"),
        tasks_eager=_bool("TASKS_EAGER"),
        task_ttl_days=_int("TASK_TTL_DAYS"),
        retry_backoff_base=_float("RETRY_BACKOFF_BASE"),
        retry_backoff_cap=_float("RETRY_BACKOFF_CAP"),
        max_cover_bytes=_int("MAX_COVER_BYTES"),
        max_body_bytes=_int("MAX_BODY_BYTES"),
        presign_ttl_seconds=_int("PRESIGN_TTL_SECONDS"),
        thumbnail_size=_int("THUMBNAIL_SIZE"),
        reconcile_minutes=_int("DLQ_RECONCILE_MINUTES"),
        auth_mode=_str("AUTH_MODE"),
        api_keys_parameter=os.environ.get("API_KEYS_PARAMETER", f"/{prefix}/api-keys"),
        local_api_keys=_str("LOCAL_API_KEYS"),
        # The event source mappings report partial batch failures (FunctionResponseTypes:
        # ReportBatchItemFailures); false only for a mapping deployed without that type.
        report_batch_item_failures=_bool("REPORT_BATCH_ITEM_FAILURES"),
        signing_secret_name=os.environ.get("SIGNING_SECRET_NAME", f"{prefix}/signing-key"),
        # Consent and mail. Links in mail point at PUBLIC_BASE_URL (never at a request's Host
        # header, which a caller controls); 0 for SES_MAX_SEND_RATE means "ask SES" (GetSendQuota).
        public_base_url=_str("PUBLIC_BASE_URL").rstrip("/"),
        mail_table=os.environ.get("MAIL_TABLE", f"{prefix}-mail"),
        confirm_token_ttl_seconds=_int("CONFIRM_TOKEN_TTL_SECONDS"),
        confirm_resend_seconds=_int("CONFIRM_RESEND_SECONDS"),
        ses_max_send_rate=_float("SES_MAX_SEND_RATE"),
        fanout_safety_ms=_int("FANOUT_SAFETY_MS"),
        # SendBulkEmail calls a fan-out page makes at once (each ~150 ms): 10 x 50 mails per
        # round reach 2,000/s; a round never holds more than one second of the send rate.
        fanout_parallel_sends=max(1, _int("FANOUT_PARALLEL_SENDS")),
        # Subscribers per segment: a fan-out deals its author's subscribers out in key ranges of
        # this many, mailed by parallel chains of pages under the one SES rate (mail/fanout.py).
        fanout_segment_size=max(50, _int("FANOUT_SEGMENT_SIZE")),
        # Dashboard: a short session, so a stolen cookie or a revoked key is good for minutes at most.
        dashboard_session_seconds=_int("DASHBOARD_SESSION_SECONDS"),
        dashboard_session_table=os.environ.get("DASHBOARD_SESSION_TABLE", f"{prefix}-dashboard-sessions"),
        # Deployed stages set WORKER_METRICS=cloudwatch (.chalice/config.json): Lambda has no runner.
        worker_metrics=_str("WORKER_METRICS").strip().lower(),
        worker_metrics_minutes=min(max(_int("WORKER_METRICS_MINUTES"), 5), 24 * 60),
        # Direct cover uploads: the POST policy's size cap, the upload URL's lifetime, how much
        # later an upload that never came is given up (a slow upload may still be arriving), the
        # browser origins CORS lets POST to the bucket, and how long S3 keeps abandoned objects.
        max_upload_bytes=_int("MAX_UPLOAD_BYTES"),
        upload_ttl_seconds=_int("UPLOAD_TTL_SECONDS"),
        upload_expiry_margin_seconds=_int("UPLOAD_EXPIRY_MARGIN_SECONDS"),
        upload_cors_origins=tuple(o.strip() for o in _str("UPLOAD_CORS_ORIGINS").split(",") if o.strip()),
        upload_retention_days=_int("UPLOAD_RETENTION_DAYS"),
        # Transactional outbox and Idempotency-Key: the relay re-sends tasks whose records were
        # committed but not acknowledged as sent after OUTBOX_RELAY_AFTER_SECONDS.
        idempotency_table=os.environ.get("IDEMPOTENCY_TABLE", f"{prefix}-idempotency"),
        imports_table=os.environ.get("IMPORTS_TABLE", f"{prefix}-imports"),
        idempotency_ttl_hours=_int("IDEMPOTENCY_TTL_HOURS"),
        outbox_relay_minutes=_int("OUTBOX_RELAY_MINUTES"),
        outbox_relay_after_seconds=_int("OUTBOX_RELAY_AFTER_SECONDS"),
        outbox_shards=_int("OUTBOX_SHARDS"),
        # How long a worker waits for the record of a message sent while its transaction
        # committed (tasks/outbox.py): a record that has not appeared by then never will.
        outbox_await_commit_seconds=_int("OUTBOX_AWAIT_COMMIT_SECONDS"),
        # Partitions per day of the index behind `GET /tasks` (newest first).
        task_day_shards=_int("TASK_DAY_SHARDS"),
    )
