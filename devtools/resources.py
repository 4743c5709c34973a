"""Create every AWS resource the app needs, idempotently (local emulator, LocalStack, tests).

On AWS the same resources come from `infra/resources.json` through CloudFormation.
"""

from __future__ import annotations

import json
import secrets
from typing import Any

from botocore.exceptions import ClientError

from chalicelib.auth import forget_cached_keys, hash_key
from chalicelib.aws import client
from chalicelib.config import QueueSettings, Settings, get_settings
from chalicelib.models import ALL_MODELS, IdempotencyRecord, TaskRecord


def create_tables() -> None:
    """DynamoDB tables (on demand) and the TTL of the tables that expire items."""
    for model in ALL_MODELS:
        if not model.exists():
            model.create_table(wait=True, billing_mode="PAY_PER_REQUEST")
    ddb = client("dynamodb")
    for model in (TaskRecord, IdempotencyRecord):
        ttl = ddb.describe_time_to_live(TableName=model.Meta.table_name)["TimeToLiveDescription"]
        if ttl.get("TimeToLiveStatus") not in ("ENABLED", "ENABLING"):
            ddb.update_time_to_live(
                TableName=model.Meta.table_name,
                TimeToLiveSpecification={"Enabled": True, "AttributeName": "expires_at"},
            )


def create_bucket(settings: Settings) -> None:
    """A private, encrypted bucket."""
    s3 = client("s3")
    try:
        kwargs: dict[str, Any] = {"Bucket": settings.media_bucket}
        if settings.region != "us-east-1":
            kwargs["CreateBucketConfiguration"] = {"LocationConstraint": settings.region}
        s3.create_bucket(**kwargs)
    except ClientError as exc:
        if exc.response["Error"]["Code"] not in ("BucketAlreadyOwnedByYou", "BucketAlreadyExists"):
            raise
    s3.put_public_access_block(
        Bucket=settings.media_bucket,
        PublicAccessBlockConfiguration={
            "BlockPublicAcls": True,
            "IgnorePublicAcls": True,
            "BlockPublicPolicy": True,
            "RestrictPublicBuckets": True,
        },
    )
    s3.put_bucket_encryption(
        Bucket=settings.media_bucket,
        ServerSideEncryptionConfiguration={
            "Rules": [{"ApplyServerSideEncryptionByDefault": {"SSEAlgorithm": "AES256"}}]
        },
    )


def _ensure_queue(name: str, attributes: dict[str, str]) -> str:
    sqs = client("sqs")
    url = sqs.create_queue(QueueName=name)["QueueUrl"]
    sqs.set_queue_attributes(QueueUrl=url, Attributes=attributes)
    return url


def create_queue_pair(queue: QueueSettings) -> None:
    """A work queue and its DLQ, joined by a redrive policy (and the DLQ's allow policy)."""
    sqs = client("sqs")
    dlq_url = _ensure_queue(queue.dlq_name, {"MessageRetentionPeriod": str(14 * 24 * 3600)})
    dlq_arn = sqs.get_queue_attributes(QueueUrl=dlq_url, AttributeNames=["QueueArn"])["Attributes"]["QueueArn"]
    _ensure_queue(
        queue.name,
        {
            "VisibilityTimeout": str(queue.visibility_timeout),
            "MessageRetentionPeriod": str(4 * 24 * 3600),
            "ReceiveMessageWaitTimeSeconds": "20",
            "RedrivePolicy": json.dumps(
                {"deadLetterTargetArn": dlq_arn, "maxReceiveCount": str(queue.max_receive_count)}
            ),
        },
    )


def ensure_api_keys_parameter(settings: Settings) -> None:
    """The SecureString parameter that holds API key hashes ({} when new)."""
    ssm = client("ssm")
    try:
        ssm.get_parameter(Name=settings.api_keys_parameter)
    except ClientError as exc:
        if exc.response["Error"]["Code"] != "ParameterNotFound":
            raise
        ssm.put_parameter(Name=settings.api_keys_parameter, Value="{}", Type="SecureString")


def ensure_signing_secret(settings: Settings) -> None:
    """The stage's server secret for HMAC signatures (random; kept when it exists)."""
    sm = client("secretsmanager")
    try:
        sm.describe_secret(SecretId=settings.signing_secret_name)
    except ClientError as exc:
        if exc.response["Error"]["Code"] != "ResourceNotFoundException":
            raise
        sm.create_secret(Name=settings.signing_secret_name, SecretString=secrets.token_urlsafe(48))


def create_api_key(user: str, admin: bool = False, key: str | None = None) -> str:
    """Store the hash of a new API key for `user`; returns the key (shown once)."""
    settings = get_settings()
    ensure_api_keys_parameter(settings)
    ssm = client("ssm")
    key = key or secrets.token_urlsafe(32)
    stored = json.loads(ssm.get_parameter(Name=settings.api_keys_parameter, WithDecryption=True)["Parameter"]["Value"])
    stored[hash_key(key)] = {"user": user, "admin": admin}
    ssm.put_parameter(Name=settings.api_keys_parameter, Value=json.dumps(stored), Type="SecureString", Overwrite=True)
    forget_cached_keys()
    return key


def create_all(settings: Settings | None = None) -> None:
    """Every resource of the stage."""
    settings = settings or get_settings()
    create_tables()
    create_bucket(settings)
    for queue in settings.queues.values():
        create_queue_pair(queue)
    client("ses").verify_email_identity(EmailAddress=settings.mail_sender)
    ensure_api_keys_parameter(settings)
    ensure_signing_secret(settings)


if __name__ == "__main__":
    create_all()
    print("resources ready")
