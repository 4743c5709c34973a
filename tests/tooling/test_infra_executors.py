"""Both executors of the one infrastructure model build the same thing.

The model (infra/model.py) is created through the APIs on the emulator (infra/local.py),
read back with Describe/Get calls, and compared with the template's properties of the same
resources (infra/cloudformation.py): tables' keys, indexes and TTL, queues' attributes and
redrive, the bucket's notification, CORS and lifecycle. A setting one executor applies and
the other does not (as the mail table's TTL once was) fails here.
"""

from __future__ import annotations

import dataclasses
import json
import os
import uuid
from collections.abc import Iterator
from typing import Any

import pytest

# One xdist worker takes the whole file (--dist loadgroup):
# its module fixture creates a private copy of the stage once.
pytestmark = pytest.mark.xdist_group("infra_executors")


def _renamed(value: Any, old: str, new: str) -> Any:
    """The model with every resource name under prefix `old` moved under `new` (a private copy)."""
    if isinstance(value, str):
        return new + value.removeprefix(old) if value.startswith(old) else value
    if isinstance(value, tuple):
        return tuple(_renamed(v, old, new) for v in value)
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        changes = {f.name: _renamed(getattr(value, f.name), old, new) for f in dataclasses.fields(value)}
        return dataclasses.replace(value, **changes)
    return value


@pytest.fixture(scope="module")
def built(settings: Any, aws: Any) -> Iterator[tuple[Any, dict[str, Any]]]:
    """A private copy of the stage's model, created on the emulator; and the template's resources for it."""
    from infra import cloudformation, local, model

    prefix = os.environ["RESOURCE_PREFIX"]
    infra = _renamed(model.build(settings), prefix, f"{prefix}-x{uuid.uuid4().hex[:4]}")
    assert infra.tables[0].name != model.build(settings).tables[0].name
    local.create(infra, settings.region)
    local.create(infra, settings.region)  # idempotent: a second run changes nothing and fails on nothing
    yield infra, cloudformation.resources(infra)
    sqs, s3, ddb = aws("sqs"), aws("s3"), aws("dynamodb")
    for queue in infra.queues:
        for name in (queue.name, queue.dead_letter.name):
            sqs.delete_queue(QueueUrl=sqs.get_queue_url(QueueName=name)["QueueUrl"])
    s3.delete_bucket(Bucket=infra.bucket.name)
    for table in infra.tables:
        ddb.delete_table(TableName=table.name)


def _of_type(resources: dict[str, Any], kind: str) -> dict[str, dict[str, Any]]:
    return {k: v["Properties"] for k, v in resources.items() if v["Type"] == kind}


def _keys(schema: list[dict[str, str]]) -> list[tuple[str, str]]:
    return sorted(((k["AttributeName"], k["KeyType"]) for k in schema), key=lambda k: k[1] != "HASH")


def _queue_name(arn_or_ref: Any, resources: dict[str, Any]) -> str:
    """A queue's name from an ARN (local) or from `Fn::GetAtt [<logical id>, Arn]` (template)."""
    if isinstance(arn_or_ref, dict):
        return str(resources[arn_or_ref["Fn::GetAtt"][0]]["Properties"]["QueueName"])
    return str(arn_or_ref).rsplit(":", 1)[1]


def test_tables_have_the_same_keys_indexes_and_ttl(built: tuple[Any, dict[str, Any]], aws: Any) -> None:
    infra, resources = built
    ddb = aws("dynamodb")
    tables = _of_type(resources, "AWS::DynamoDB::Table")
    assert sorted(p["TableName"] for p in tables.values()) == sorted(t.name for t in infra.tables)
    for props in tables.values():
        described = ddb.describe_table(TableName=props["TableName"])["Table"]
        assert _keys(described["KeySchema"]) == _keys(props["KeySchema"]), props["TableName"]
        assert {(a["AttributeName"], a["AttributeType"]) for a in described["AttributeDefinitions"]} == {
            (a["AttributeName"], a["AttributeType"]) for a in props["AttributeDefinitions"]
        }, props["TableName"]
        assert {
            i["IndexName"]: (_keys(i["KeySchema"]), i["Projection"]["ProjectionType"])
            for i in described.get("GlobalSecondaryIndexes", [])
        } == {
            i["IndexName"]: (_keys(i["KeySchema"]), i["Projection"]["ProjectionType"])
            for i in props.get("GlobalSecondaryIndexes", [])
        }, props["TableName"]
        ttl = ddb.describe_time_to_live(TableName=props["TableName"])["TimeToLiveDescription"]
        local_ttl = ttl.get("AttributeName") if ttl.get("TimeToLiveStatus") in ("ENABLED", "ENABLING") else None
        template_ttl = props.get("TimeToLiveSpecification", {}).get("AttributeName")
        where = props["TableName"]
        assert local_ttl == template_ttl, f"{where}: TTL {local_ttl} locally, {template_ttl} in the template"
    # The model's TTL tables are the ones whose PynamoDB model has a TTLAttribute (several, not only tasks).
    assert len([t for t in infra.tables if t.ttl_attribute]) >= 3


def test_queues_have_the_same_attributes_and_redrive(built: tuple[Any, dict[str, Any]], aws: Any) -> None:
    infra, resources = built
    sqs = aws("sqs")
    queues = _of_type(resources, "AWS::SQS::Queue")
    assert len(queues) == 2 * len(infra.queues)
    for props in queues.values():
        url = sqs.get_queue_url(QueueName=props["QueueName"])["QueueUrl"]
        attributes = sqs.get_queue_attributes(QueueUrl=url, AttributeNames=["All"])["Attributes"]
        for name in ("VisibilityTimeout", "MessageRetentionPeriod", "ReceiveMessageWaitTimeSeconds"):
            if name in props:
                assert int(attributes[name]) == int(props[name]), f"{props['QueueName']}: {name}"
        if "RedrivePolicy" not in props:
            assert "RedrivePolicy" not in attributes, props["QueueName"]
            continue
        redrive = json.loads(attributes["RedrivePolicy"])
        assert int(redrive["maxReceiveCount"]) == int(props["RedrivePolicy"]["maxReceiveCount"])
        assert _queue_name(redrive["deadLetterTargetArn"], resources) == _queue_name(
            props["RedrivePolicy"]["deadLetterTargetArn"], resources
        )


def test_bucket_has_the_same_notification_cors_and_lifecycle(built: tuple[Any, dict[str, Any]], aws: Any) -> None:
    infra, resources = built
    s3 = aws("s3")
    [props] = _of_type(resources, "AWS::S3::Bucket").values()
    assert props["BucketName"] == infra.bucket.name
    described = s3.get_bucket_notification_configuration(Bucket=infra.bucket.name)
    local = sorted(
        (
            event,
            _queue_name(c["QueueArn"], resources),
            tuple((r["Name"].lower(), r["Value"]) for r in c["Filter"]["Key"]["FilterRules"]),
        )
        for c in described.get("QueueConfigurations", [])
        for event in c["Events"]
    )
    template = sorted(
        (
            c["Event"],
            _queue_name(c["Queue"], resources),
            tuple((r["Name"].lower(), r["Value"]) for r in c["Filter"]["S3Key"]["Rules"]),
        )
        for c in props["NotificationConfiguration"]["QueueConfigurations"]
    )
    assert local == template and local
    cors = s3.get_bucket_cors(Bucket=infra.bucket.name)["CORSRules"]
    assert [
        (r["AllowedOrigins"], r["AllowedMethods"], r["AllowedHeaders"], r["ExposeHeaders"], r["MaxAgeSeconds"])
        for r in cors
    ] == [
        (r["AllowedOrigins"], r["AllowedMethods"], r["AllowedHeaders"], r["ExposedHeaders"], r["MaxAge"])
        for r in props["CorsConfiguration"]["CorsRules"]
    ]
    rules = s3.get_bucket_lifecycle_configuration(Bucket=infra.bucket.name)["Rules"]
    assert [(r["ID"], r["Filter"]["Prefix"], r["Expiration"]["Days"]) for r in rules] == [
        (r["Id"], r["Prefix"], r["ExpirationInDays"]) for r in props["LifecycleConfiguration"]["Rules"]
    ]
    encryption = s3.get_bucket_encryption(Bucket=infra.bucket.name)["ServerSideEncryptionConfiguration"]["Rules"]
    assert [r["ApplyServerSideEncryptionByDefault"]["SSEAlgorithm"] for r in encryption] == [
        r["ServerSideEncryptionByDefault"]["SSEAlgorithm"]
        for r in props["BucketEncryption"]["ServerSideEncryptionConfiguration"]
    ]
    block = s3.get_public_access_block(Bucket=infra.bucket.name)["PublicAccessBlockConfiguration"]
    assert block == props["PublicAccessBlockConfiguration"]


def test_both_paths_put_the_same_alarms(aws: Any, settings: Any) -> None:
    """`make deploy`'s alarms (API calls) are the template's, thresholds at the parameters' defaults."""
    from infra import cloudformation, local, model

    local.apply_monitoring(settings)
    stage = model.build(settings)
    template = cloudformation.resources(stage)
    parameters = cloudformation.alarm_parameters(stage)
    described = {
        a["AlarmName"]: a
        for a in aws("cloudwatch").describe_alarms(AlarmNames=[a.name for a in stage.alarms])["MetricAlarms"]
    }
    for props in _of_type(template, "AWS::CloudWatch::Alarm").values():
        alarm = described[props["AlarmName"]]
        threshold = props["Threshold"]
        if isinstance(threshold, dict):
            threshold = parameters[threshold["Ref"]]["Default"]
        assert alarm["Threshold"] == float(threshold)
        for key in ("MetricName", "Namespace", "Statistic", "EvaluationPeriods", "Period", "ComparisonOperator"):
            assert alarm[key] == props[key], f"{props['AlarmName']}: {key}"
        assert alarm["Dimensions"] == props["Dimensions"]
