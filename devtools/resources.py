"""Create every AWS resource the app needs, idempotently (local emulator, LocalStack, tests).

On AWS they come from `devtools/infra.py`'s CloudFormation fragment (`make package`), or from this
module after `chalice deploy` (`make deploy`).
"""

from __future__ import annotations

import json
import secrets
import time
from typing import Any

from botocore.exceptions import ClientError

from chalicelib.api.auth import forget_cached_keys, hash_key
from chalicelib.covers.upload_events import UPLOADS_PREFIX
from chalicelib.platform.aws import client
from chalicelib.platform.config import QueueSettings, Settings, get_settings
from chalicelib.platform.idempotency_model import IdempotencyRecord
from chalicelib.tables import ALL_MODELS
from chalicelib.tasks.models import TaskRecord


def create_tables() -> None:
    """DynamoDB tables (on demand) and the TTL of the tables that expire items."""
    for model in ALL_MODELS:
        if not model.exists():
            model.create_table(wait=True, billing_mode="PAY_PER_REQUEST")
        else:
            add_missing_indexes(model)
    ddb = client("dynamodb")
    for model in (TaskRecord, IdempotencyRecord):
        ttl = ddb.describe_time_to_live(TableName=model.Meta.table_name)["TimeToLiveDescription"]
        if ttl.get("TimeToLiveStatus") not in ("ENABLED", "ENABLING"):
            ddb.update_time_to_live(
                TableName=model.Meta.table_name,
                TimeToLiveSpecification={"Enabled": True, "AttributeName": "expires_at"},
            )


def add_missing_indexes(model: Any) -> list[str]:
    """Give a table kept from an earlier run the indexes its model gained since (as a stack update would)."""
    ddb, table = client("dynamodb"), model.Meta.table_name
    present = {i["IndexName"] for i in ddb.describe_table(TableName=table)["Table"].get("GlobalSecondaryIndexes", [])}
    added, schema = [], model._get_schema()
    for index in schema["global_secondary_indexes"]:
        if index["index_name"] in present:
            continue
        create = {
            "IndexName": index["index_name"],
            "KeySchema": sorted(index["key_schema"], key=lambda k: k["KeyType"] != "HASH"),
            "Projection": index["projection"],
        }
        ddb.update_table(
            TableName=table,
            AttributeDefinitions=schema["attribute_definitions"],  # all of them: moto replaces the list
            GlobalSecondaryIndexUpdates=[{"Create": create}],
        )
        added.append(index["index_name"])
    return added


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
    return str(url)


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


def _queue_arn(name: str) -> str:
    sqs = client("sqs")
    url = sqs.get_queue_url(QueueName=name)["QueueUrl"]
    return str(sqs.get_queue_attributes(QueueUrl=url, AttributeNames=["QueueArn"])["Attributes"]["QueueArn"])


def upload_queue_policy(queue_arn: str, bucket: str, account_id: str) -> dict[str, Any]:
    """Let S3 (this bucket, this account only) send its event notifications to the media queue."""
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
                    "ArnEquals": {"aws:SourceArn": f"arn:aws:s3:::{bucket}"},
                    "StringEquals": {"aws:SourceAccount": account_id},
                },
            }
        ],
    }


def upload_cors_rules(settings: Settings) -> list[dict[str, Any]]:
    """Browsers may POST a form to the bucket from these origins (the policy still decides)."""
    return [
        {
            "AllowedOrigins": list(settings.upload_cors_origins),
            "AllowedMethods": ["POST"],
            "AllowedHeaders": ["*"],
            "ExposeHeaders": ["ETag", "Location"],
            "MaxAgeSeconds": 3600,
        }
    ]


def upload_lifecycle_rule(settings: Settings) -> dict[str, Any]:
    """Uploads are moved to covers/ once ingested; what is left under uploads/ was abandoned."""
    return {
        "ID": "abandoned-uploads",
        "Status": "Enabled",
        "Filter": {"Prefix": UPLOADS_PREFIX},
        "Expiration": {"Days": settings.upload_retention_days},
        "AbortIncompleteMultipartUpload": {"DaysAfterInitiation": settings.upload_retention_days},
    }


def configure_uploads(settings: Settings) -> None:
    """Direct uploads: the media queue accepts S3's events, the bucket sends ObjectCreated under
    uploads/ there, answers browsers' CORS preflights, and expires abandoned uploads."""
    queue_arn = _queue_arn(settings.media.name)
    account_id = queue_arn.split(":")[4]
    sqs, s3 = client("sqs"), client("s3")
    sqs.set_queue_attributes(
        QueueUrl=sqs.get_queue_url(QueueName=settings.media.name)["QueueUrl"],
        Attributes={"Policy": json.dumps(upload_queue_policy(queue_arn, settings.media_bucket, account_id))},
    )
    s3.put_bucket_cors(Bucket=settings.media_bucket, CORSConfiguration={"CORSRules": upload_cors_rules(settings)})
    s3.put_bucket_lifecycle_configuration(
        Bucket=settings.media_bucket, LifecycleConfiguration={"Rules": [upload_lifecycle_rule(settings)]}
    )
    notification = {
        "QueueConfigurations": [
            {
                "Id": "cover-uploads",
                "QueueArn": queue_arn,
                "Events": ["s3:ObjectCreated:*"],
                "Filter": {"Key": {"FilterRules": [{"Name": "prefix", "Value": UPLOADS_PREFIX}]}},
            }
        ]
    }
    for attempt in range(6):
        try:
            s3.put_bucket_notification_configuration(
                Bucket=settings.media_bucket, NotificationConfiguration=notification
            )
            return
        except ClientError as exc:
            # S3 test-sends to the queue; a queue policy set a moment ago may not be in effect yet.
            if exc.response["Error"]["Code"] != "InvalidArgument" or attempt == 5:
                raise
            time.sleep(2 * (attempt + 1))


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
    configure_uploads(settings)  # after the media queue: S3 checks its destination
    client("ses").verify_email_identity(EmailAddress=settings.mail_sender)
    ensure_api_keys_parameter(settings)
    ensure_signing_secret(settings)


if __name__ == "__main__":
    create_all()
    print("resources ready")
