"""The local executor: the infrastructure model (infra/model.py) created through the APIs, idempotently.

Runs against the embedded emulator, LocalStack or MiniStack (AWS_ENDPOINT_URL), and against
AWS before `chalice deploy` (`make deploy`). The other executor, infra/cloudformation.py,
writes the same model as the template of `make package`; tests/tooling/test_infra_executors.py
checks that both give the same tables, queues and bucket.
"""

from __future__ import annotations

import json
import secrets
import time
from typing import Any

from botocore.exceptions import ClientError

from chalicelib.api.auth import forget_cached_keys, hash_key
from chalicelib.platform.aws import client
from chalicelib.platform.config import QueueSettings, Settings, get_settings
from infra import model
from infra.dashboard import dashboard_body


def _keys(keys: tuple[model.Key, ...]) -> list[dict[str, str]]:
    return [{"AttributeName": k.attribute, "KeyType": k.key_type} for k in keys]


def _index(index: model.Index) -> dict[str, Any]:
    return {"IndexName": index.name, "KeySchema": _keys(index.keys), "Projection": index.projection}


def _attributes(table: model.Table) -> list[dict[str, str]]:
    return [{"AttributeName": n, "AttributeType": t} for n, t in table.attributes]


def create_table(table: model.Table) -> None:
    """The table on demand with its indexes (the missing ones added to a kept table), and its TTL."""
    ddb = client("dynamodb")
    try:
        kwargs: dict[str, Any] = {
            "TableName": table.name,
            "BillingMode": "PAY_PER_REQUEST",
            "AttributeDefinitions": _attributes(table),
            "KeySchema": _keys(table.keys),
        }
        if table.indexes:
            kwargs["GlobalSecondaryIndexes"] = [_index(i) for i in table.indexes]
        ddb.create_table(**kwargs)
        ddb.get_waiter("table_exists").wait(TableName=table.name, WaiterConfig={"Delay": 1, "MaxAttempts": 60})
    except ClientError as exc:
        if exc.response["Error"]["Code"] != "ResourceInUseException":
            raise
        add_missing_indexes(table)
    if table.ttl_attribute:
        ttl = ddb.describe_time_to_live(TableName=table.name)["TimeToLiveDescription"]
        if ttl.get("TimeToLiveStatus") not in ("ENABLED", "ENABLING"):
            ddb.update_time_to_live(
                TableName=table.name,
                TimeToLiveSpecification={"Enabled": True, "AttributeName": table.ttl_attribute},
            )


def add_missing_indexes(table: model.Table) -> list[str]:
    """Give a table kept from an earlier run the indexes its model gained since (as a stack update would)."""
    ddb = client("dynamodb")
    described = ddb.describe_table(TableName=table.name)["Table"]
    present = {i["IndexName"] for i in described.get("GlobalSecondaryIndexes", [])}
    added = []
    for index in table.indexes:
        if index.name in present:
            continue
        ddb.update_table(
            TableName=table.name,
            AttributeDefinitions=_attributes(table),  # all of them: moto replaces the list
            GlobalSecondaryIndexUpdates=[{"Create": _index(index)}],
        )
        added.append(index.name)
    return added


def create_tables(settings: Settings | None = None) -> None:
    """Every table of the model (PynamoDB's models: keys, indexes, TTL)."""
    for table in model.build(settings or get_settings()).tables:
        create_table(table)


def create_bucket(bucket: model.Bucket, region: str) -> None:
    """A private, encrypted bucket."""
    s3 = client("s3")
    try:
        kwargs: dict[str, Any] = {"Bucket": bucket.name}
        if region != "us-east-1":
            kwargs["CreateBucketConfiguration"] = {"LocationConstraint": region}
        s3.create_bucket(**kwargs)
    except ClientError as exc:
        if exc.response["Error"]["Code"] not in ("BucketAlreadyOwnedByYou", "BucketAlreadyExists"):
            raise
    s3.put_public_access_block(
        Bucket=bucket.name,
        PublicAccessBlockConfiguration={
            "BlockPublicAcls": True,
            "IgnorePublicAcls": True,
            "BlockPublicPolicy": True,
            "RestrictPublicBuckets": True,
        },
    )
    s3.put_bucket_encryption(
        Bucket=bucket.name,
        ServerSideEncryptionConfiguration={
            "Rules": [{"ApplyServerSideEncryptionByDefault": {"SSEAlgorithm": "AES256"}}]
        },
    )


def _ensure_queue(name: str, attributes: dict[str, str]) -> str:
    sqs = client("sqs")
    url = sqs.create_queue(QueueName=name)["QueueUrl"]
    sqs.set_queue_attributes(QueueUrl=url, Attributes=attributes)
    return str(url)


def create_queue(queue: model.Queue) -> None:
    """A work queue and its DLQ, joined by a redrive policy."""
    sqs = client("sqs")
    dead = queue.dead_letter
    dlq_url = _ensure_queue(dead.name, {"MessageRetentionPeriod": str(dead.retention_seconds)})
    dlq_arn = sqs.get_queue_attributes(QueueUrl=dlq_url, AttributeNames=["QueueArn"])["Attributes"]["QueueArn"]
    _ensure_queue(
        queue.name,
        {
            "VisibilityTimeout": str(queue.visibility_timeout),
            "MessageRetentionPeriod": str(queue.retention_seconds),
            "ReceiveMessageWaitTimeSeconds": str(queue.receive_wait_seconds),
            "RedrivePolicy": json.dumps(
                {"deadLetterTargetArn": dlq_arn, "maxReceiveCount": str(queue.max_receive_count)}
            ),
        },
    )


def create_queue_pair(queue: QueueSettings) -> None:
    """A work queue and its DLQ from a queue's settings (tests make private pairs this way)."""
    create_queue(model.queue(queue))


def _queue_arn(name: str) -> str:
    sqs = client("sqs")
    url = sqs.get_queue_url(QueueName=name)["QueueUrl"]
    return str(sqs.get_queue_attributes(QueueUrl=url, AttributeNames=["QueueArn"])["Attributes"]["QueueArn"])


def configure_bucket(infra: model.Infrastructure) -> None:
    """Direct uploads: each notified queue accepts S3's events, the bucket sends them there,
    answers browsers' CORS preflights, and expires abandoned uploads."""
    bucket = infra.bucket
    sqs, s3 = client("sqs"), client("s3")
    configurations = []
    for notification in bucket.notifications:
        queue = infra.queue(notification.queue_key)
        queue_arn = _queue_arn(queue.name)
        policy = model.upload_queue_policy(queue_arn, f"arn:aws:s3:::{bucket.name}", queue_arn.split(":")[4])
        sqs.set_queue_attributes(
            QueueUrl=sqs.get_queue_url(QueueName=queue.name)["QueueUrl"],
            Attributes={"Policy": json.dumps(policy)},
        )
        configurations.append(
            {
                "Id": notification.id,
                "QueueArn": queue_arn,
                "Events": list(notification.events),
                "Filter": {"Key": {"FilterRules": [{"Name": "prefix", "Value": notification.prefix}]}},
            }
        )
    s3.put_bucket_cors(
        Bucket=bucket.name,
        CORSConfiguration={
            "CORSRules": [
                {
                    "AllowedOrigins": list(c.origins),
                    "AllowedMethods": list(c.methods),
                    "AllowedHeaders": list(c.headers),
                    "ExposeHeaders": list(c.expose_headers),
                    "MaxAgeSeconds": c.max_age_seconds,
                }
                for c in bucket.cors
            ]
        },
    )
    s3.put_bucket_lifecycle_configuration(
        Bucket=bucket.name,
        LifecycleConfiguration={
            "Rules": [
                {
                    "ID": r.id,
                    "Status": "Enabled",
                    "Filter": {"Prefix": r.prefix},
                    "Expiration": {"Days": r.days},
                    "AbortIncompleteMultipartUpload": {"DaysAfterInitiation": r.days},
                }
                for r in bucket.lifecycle
            ]
        },
    )
    notification_configuration = {"QueueConfigurations": configurations}
    for attempt in range(6):
        try:
            s3.put_bucket_notification_configuration(
                Bucket=bucket.name, NotificationConfiguration=notification_configuration
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


def create(infra: model.Infrastructure, region: str) -> None:
    """The model's tables, queues and bucket (what the template's executor declares alike)."""
    for table in infra.tables:
        create_table(table)
    create_bucket(infra.bucket, region)
    for queue in infra.queues:
        create_queue(queue)
    configure_bucket(infra)  # after the queues: S3 checks its destinations


def create_all(settings: Settings | None = None) -> None:
    """Every resource of the stage."""
    settings = settings or get_settings()
    infra = model.build(settings)
    create(infra, settings.region)
    client("ses").verify_email_identity(EmailAddress=infra.mail_sender)
    ensure_api_keys_parameter(settings)
    ensure_signing_secret(settings)


def apply_monitoring(settings: Settings | None = None) -> dict[str, Any]:
    """Create or update the dashboard, alarm topic and alarms through the APIs.

    The `chalice deploy` path has no CloudFormation stack; this puts the very same
    dashboard and alarms as the template, resolved for the current region.
    """
    settings = settings or get_settings()
    infra = model.build(settings)
    cloudwatch = client("cloudwatch")
    body = json.dumps(dashboard_body(settings)).replace("${AWS::Region}", settings.region)
    cloudwatch.put_dashboard(DashboardName=infra.dashboard, DashboardBody=body)
    topic = client("sns").create_topic(Name=infra.alarm_topic)["TopicArn"]
    for alarm in infra.alarms:
        cloudwatch.put_metric_alarm(
            AlarmName=alarm.name,
            AlarmDescription=alarm.description,
            Namespace="AWS/SQS",
            MetricName=alarm.metric,
            Dimensions=[{"Name": "QueueName", "Value": alarm.queue_name}],
            Statistic="Maximum",
            Period=60,
            EvaluationPeriods=alarm.evaluation_periods,
            Threshold=float(alarm.threshold),
            ComparisonOperator="GreaterThanThreshold",
            TreatMissingData="notBreaching",
            AlarmActions=[topic],
            OKActions=[topic],
        )
    return {"dashboard": infra.dashboard, "alarm_topic": topic, "alarms": [a.name for a in infra.alarms]}


if __name__ == "__main__":
    create_all()
    print("resources ready")
