"""The CloudFormation executor: the infrastructure model (infra/model.py) as the merge template.

`chalice package --merge-template` merges it into the SAM template of the functions, so one
stack holds everything: the tables, the private encrypted bucket, the queues with their DLQs
and redrive policies, the SES identity, the signing secret, the dashboard and the alarms.
The other executor, infra/local.py, creates the same model through the APIs.

  python -m infra --stage dev --out build/infra-dev.json
  python -m infra --stage dev --package build/package-dev   # + chalice package
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

from chalicelib.platform.config import Settings
from infra import lambda_build, model
from infra.dashboard import dashboard_body
from infra.functions import (
    FUNCTIONS,
    WORKERS,
    check_time_limits,
    check_visibility_timeouts,
    function_name,
    function_settings,
    periodic_functions,
    response_types,
)
from infra.gateway_responses import gateway_responses

SNAPSTART_ALIAS = "live"


def snapstart_enabled() -> bool:
    """The stage's SNAPSTART setting (`.chalice/config.json`; off unless "true")."""
    return os.environ.get("SNAPSTART", "false").strip().lower() == "true"


def snapstart_resources(logical_ids: list[str]) -> dict[str, Any]:
    """SnapStart on every function, and everything that invokes one pointed at its alias.

    SnapStart applies to published versions only, so each function gets SAM's
    `AutoPublishAlias`: every deploy whose code or configuration changed publishes a
    version (snapshotted then) and moves the alias to it. SAM points the events it
    generates (SQS mappings, schedules) at the alias itself; the REST API's integrations
    and authorizer come from chalice's swagger with the plain function ARN, so their URIs
    are overridden here and API Gateway gets leave to invoke the aliases, or it would call
    `$LATEST`, which never restores a snapshot. SAM names an alias `<Function>Alias<name>`.
    """
    import app  # the routes, for the API's integrations

    resources: dict[str, Any] = {
        logical: {"Properties": {"AutoPublishAlias": SNAPSTART_ALIAS, "SnapStart": {"ApplyOn": "PublishedVersions"}}}
        for logical in logical_ids
    }

    def alias(logical: str) -> str:
        return f"{logical}Alias{SNAPSTART_ALIAS}"

    def uri(logical: str) -> dict[str, str]:
        return {
            "Fn::Sub": "arn:${AWS::Partition}:apigateway:${AWS::Region}:lambda:path/2015-03-31"
            f"/functions/${{{alias(logical)}}}/invocations"
        }

    paths = {
        path: {method.lower(): {"x-amazon-apigateway-integration": {"uri": uri("APIHandler")}} for method in methods}
        for path, methods in app.app.routes.items()
    }
    auth = FUNCTIONS["api_key_auth"]
    authorizers = {"api_key_auth": {"x-amazon-apigateway-authorizer": {"authorizerUri": uri(auth)}}}
    resources["RestAPI"] = {"Properties": {"DefinitionBody": {"paths": paths, "securityDefinitions": authorizers}}}
    for logical in ("APIHandler", auth):
        resources[f"{alias(logical)}InvokePermission"] = {
            "Type": "AWS::Lambda::Permission",
            "Properties": {
                "FunctionName": {"Ref": alias(logical)},
                "Action": "lambda:InvokeFunction",
                "Principal": "apigateway.amazonaws.com",
                "SourceArn": {
                    "Fn::Sub": [
                        "arn:${AWS::Partition}:execute-api:${AWS::Region}:${AWS::AccountId}:${RestAPIId}/*",
                        {"RestAPIId": {"Ref": "RestAPI"}},
                    ]
                },
            },
        }
    return resources


def _deep_merge(into: dict[str, Any], extra: dict[str, Any]) -> None:
    for key, value in extra.items():
        if isinstance(value, dict) and isinstance(into.get(key), dict):
            _deep_merge(into[key], value)
        else:
            into[key] = value


def table_resource(table: model.Table) -> dict[str, Any]:
    """An AWS::DynamoDB::Table: the model's keys, indexes and TTL, with backups and encryption."""
    properties: dict[str, Any] = {
        "TableName": table.name,
        "BillingMode": "PAY_PER_REQUEST",
        "AttributeDefinitions": [{"AttributeName": n, "AttributeType": t} for n, t in table.attributes],
        "KeySchema": _keys(table.keys),
        "PointInTimeRecoverySpecification": {"PointInTimeRecoveryEnabled": True},
        "SSESpecification": {"SSEEnabled": True},
    }
    if table.indexes:
        properties["GlobalSecondaryIndexes"] = [
            {"IndexName": i.name, "KeySchema": _keys(i.keys), "Projection": i.projection} for i in table.indexes
        ]
    if table.ttl_attribute:
        properties["TimeToLiveSpecification"] = {"AttributeName": table.ttl_attribute, "Enabled": True}
    return {
        "Type": "AWS::DynamoDB::Table",
        "DeletionPolicy": "Retain",
        "UpdateReplacePolicy": "Retain",
        "Properties": properties,
    }


def _keys(keys: tuple[model.Key, ...]) -> list[dict[str, str]]:
    return [{"AttributeName": k.attribute, "KeyType": k.key_type} for k in keys]


def _arn(service: str, resource: str) -> dict[str, str]:
    return {"Fn::Sub": f"arn:${{AWS::Partition}}:{service}:${{AWS::Region}}:${{AWS::AccountId}}:{resource}"}


def dead_letter_logical_id(queue: model.Queue) -> str:
    return f"{model.logical_id(queue.key)}DeadLetterQueue"


def queue_resources(queue: model.Queue) -> dict[str, Any]:
    """A work queue, its DLQ and the redrive policies joining them."""
    dlq = dead_letter_logical_id(queue)
    return {
        dlq: {
            "Type": "AWS::SQS::Queue",
            "Properties": {
                "QueueName": queue.dead_letter.name,
                "MessageRetentionPeriod": queue.dead_letter.retention_seconds,
                "SqsManagedSseEnabled": True,
                "RedriveAllowPolicy": {"redrivePermission": "byQueue", "sourceQueueArns": [_arn("sqs", queue.name)]},
            },
        },
        queue.logical_id: {
            "Type": "AWS::SQS::Queue",
            "Properties": {
                "QueueName": queue.name,
                "VisibilityTimeout": queue.visibility_timeout,
                "MessageRetentionPeriod": queue.retention_seconds,
                "ReceiveMessageWaitTimeSeconds": queue.receive_wait_seconds,
                "SqsManagedSseEnabled": True,
                "RedrivePolicy": {
                    "deadLetterTargetArn": {"Fn::GetAtt": [dlq, "Arn"]},
                    "maxReceiveCount": queue.max_receive_count,
                },
            },
        },
    }


def notification_queue_policy_id(queue: model.Queue) -> str:
    return f"{model.logical_id(queue.key)}UploadEventsQueuePolicy"


def bucket_resources(infra: model.Infrastructure) -> dict[str, Any]:
    """The media bucket (private, owner-enforced, encrypted, TLS only) with its uploads setup.

    S3 checks that it may send to a queue when the notification is created, so the queue
    policy must exist first. The policy names the bucket by its ARN built from the (fixed)
    bucket name, not by `Fn::GetAtt`, so the order is queue -> queue policy -> bucket with
    no cycle.
    """
    bucket = infra.bucket
    targets = {n.queue_key: infra.queue(n.queue_key) for n in bucket.notifications}
    properties: dict[str, Any] = {
        "BucketName": bucket.name,
        "PublicAccessBlockConfiguration": {
            "BlockPublicAcls": True,
            "BlockPublicPolicy": True,
            "IgnorePublicAcls": True,
            "RestrictPublicBuckets": True,
        },
        "OwnershipControls": {"Rules": [{"ObjectOwnership": "BucketOwnerEnforced"}]},
        "BucketEncryption": {
            "ServerSideEncryptionConfiguration": [
                {"ServerSideEncryptionByDefault": {"SSEAlgorithm": "AES256"}, "BucketKeyEnabled": True}
            ]
        },
        "VersioningConfiguration": {"Status": "Suspended"},
        "NotificationConfiguration": {
            "QueueConfigurations": [
                {
                    "Event": event,
                    "Queue": {"Fn::GetAtt": [targets[n.queue_key].logical_id, "Arn"]},
                    "Filter": {"S3Key": {"Rules": [{"Name": "prefix", "Value": n.prefix}]}},
                }
                for n in bucket.notifications
                for event in n.events
            ]
        },
        "CorsConfiguration": {
            "CorsRules": [
                {
                    "AllowedOrigins": list(c.origins),
                    "AllowedMethods": list(c.methods),
                    "AllowedHeaders": list(c.headers),
                    "ExposedHeaders": list(c.expose_headers),
                    "MaxAge": c.max_age_seconds,
                }
                for c in bucket.cors
            ]
        },
        "LifecycleConfiguration": {
            "Rules": [
                {
                    "Id": r.id,
                    "Status": "Enabled",
                    "Prefix": r.prefix,
                    "ExpirationInDays": r.days,
                    "AbortIncompleteMultipartUpload": {"DaysAfterInitiation": r.days},
                }
                for r in bucket.lifecycle
            ]
        },
    }
    resources: dict[str, Any] = {
        bucket.logical_id: {
            "Type": "AWS::S3::Bucket",
            "DeletionPolicy": "Retain",
            "UpdateReplacePolicy": "Retain",
            "DependsOn": [notification_queue_policy_id(q) for q in targets.values()],
            "Properties": properties,
        },
        f"{bucket.logical_id}Policy": {
            "Type": "AWS::S3::BucketPolicy",
            "Properties": {
                "Bucket": {"Ref": bucket.logical_id},
                "PolicyDocument": {
                    "Version": "2012-10-17",
                    "Statement": [
                        {
                            "Sid": "DenyInsecureTransport",
                            "Effect": "Deny",
                            "Principal": "*",
                            "Action": "s3:*",
                            "Resource": [
                                {"Fn::GetAtt": [bucket.logical_id, "Arn"]},
                                {"Fn::Sub": f"${{{bucket.logical_id}.Arn}}/*"},
                            ],
                            "Condition": {"Bool": {"aws:SecureTransport": "false"}},
                        }
                    ],
                },
            },
        },
    }
    source_arn = f"arn:${{AWS::Partition}}:s3:::{bucket.name}"
    for queue in targets.values():
        resources[notification_queue_policy_id(queue)] = {
            "Type": "AWS::SQS::QueuePolicy",
            "Properties": {
                "Queues": [{"Ref": queue.logical_id}],
                "PolicyDocument": model.upload_queue_policy(
                    {"Fn::GetAtt": [queue.logical_id, "Arn"]}, {"Fn::Sub": source_arn}, {"Ref": "AWS::AccountId"}
                ),
            },
        }
    return resources


def alarm_resources(infra: model.Infrastructure) -> dict[str, Any]:
    """An SNS topic (with an optional e-mail subscription) and the queue alarms."""
    resources: dict[str, Any] = {
        "AlarmTopic": {"Type": "AWS::SNS::Topic", "Properties": {"TopicName": infra.alarm_topic}},
        "AlarmEmailSubscription": {
            "Type": "AWS::SNS::Subscription",
            "Condition": "HasAlarmEmail",
            "Properties": {"TopicArn": {"Ref": "AlarmTopic"}, "Protocol": "email", "Endpoint": {"Ref": "AlarmEmail"}},
        },
    }
    for alarm in infra.alarms:
        resources[alarm.logical_id] = {
            "Type": "AWS::CloudWatch::Alarm",
            "Properties": {
                "Namespace": "AWS/SQS",
                "Period": 60,
                "EvaluationPeriods": alarm.evaluation_periods,
                "ComparisonOperator": "GreaterThanThreshold",
                "TreatMissingData": "notBreaching",
                "AlarmActions": [{"Ref": "AlarmTopic"}],
                "OKActions": [{"Ref": "AlarmTopic"}],
                "AlarmName": alarm.name,
                "AlarmDescription": alarm.description,
                "MetricName": alarm.metric,
                "Dimensions": [{"Name": "QueueName", "Value": alarm.queue_name}],
                "Statistic": "Maximum",
                "Threshold": {"Ref": alarm.threshold_parameter} if alarm.threshold_parameter else int(alarm.threshold),
            },
        }
    return resources


def alarm_parameters(infra: model.Infrastructure) -> dict[str, Any]:
    parameters: dict[str, Any] = {
        "AlarmEmail": {
            "Type": "String",
            "Default": "",
            "Description": "E-mail address that receives the alarms (empty: none)",
        }
    }
    for alarm in infra.alarms:
        if alarm.threshold_parameter:
            parameters[alarm.threshold_parameter] = {
                "Type": "Number",
                "Default": int(alarm.threshold),
                "MinValue": 60,
                "Description": f"Alarm when the oldest message in {alarm.queue_name} is older than this",
            }
    return parameters


def resources(infra: model.Infrastructure) -> dict[str, Any]:
    """The model's resources (no function, no API) as template resources, by logical id."""
    found: dict[str, Any] = {table.logical_id: table_resource(table) for table in infra.tables}
    for queue in infra.queues:
        found.update(queue_resources(queue))
    found.update(bucket_resources(infra))
    found["MailSenderIdentity"] = {
        "Type": "AWS::SES::EmailIdentity",
        "Properties": {"EmailIdentity": infra.mail_sender},
    }
    found["SigningSecret"] = {
        "Type": "AWS::SecretsManager::Secret",
        "Properties": {
            "Name": infra.signing_secret,
            "Description": "HMAC key for cursors, dashboard sessions and mail links",
            "GenerateSecretString": {"PasswordLength": 64, "ExcludePunctuation": True},
        },
    }
    found.update(alarm_resources(infra))
    return found


def function_resources(settings: Settings, infra: model.Infrastructure) -> dict[str, Any]:
    """What the template adds to the functions chalice generates: names, order, response types."""
    found: dict[str, Any] = {}
    for queue in infra.queues:
        # The event source mapping names its queue by ARN string: create the queue first.
        found[FUNCTIONS[WORKERS[queue.key]]] = {"DependsOn": [queue.logical_id]}
    for name, logical in {**FUNCTIONS, **periodic_functions()}.items():
        # The names `chalice deploy` gives, so log groups and IAM scopes match on both paths.
        found.setdefault(logical, {})["Properties"] = {"FunctionName": function_name(settings, name)}
    for worker in WORKERS.values():
        # Deep-merged into the event chalice generates (chalice cannot set it: aws/chalice#2029);
        # the same setting is exported to the function as REPORT_BATCH_ITEM_FAILURES, so the
        # handler's answer and the mapping agree.
        logical = FUNCTIONS[worker]
        if response_types(settings):
            found[logical]["Properties"]["Events"] = {
                f"{logical}SqsEventSource": {"Properties": {"FunctionResponseTypes": response_types(settings)}}
            }
    return found


def build(stage: str) -> dict[str, Any]:
    """The merge template for `stage` (the environment must hold the stage's settings)."""
    from chalicelib.platform.config import get_settings

    settings = get_settings()
    functions = function_settings(stage)
    check_visibility_timeouts(settings, functions)
    check_time_limits(functions)
    infra = model.build(settings)
    template_resources = {**resources(infra), **function_resources(settings, infra)}
    # Merged by `chalice package --merge-template` into the REST API chalice generates.
    template_resources["RestAPI"] = {
        "Properties": {"DefinitionBody": {"x-amazon-apigateway-gateway-responses": gateway_responses()}}
    }
    if snapstart_enabled():
        logical_ids = sorted({*FUNCTIONS.values(), *periodic_functions().values()})
        _deep_merge(template_resources, snapstart_resources(logical_ids))
    template_resources["Dashboard"] = {
        "Type": "AWS::CloudWatch::Dashboard",
        "Properties": {
            "DashboardName": infra.dashboard,
            "DashboardBody": {"Fn::Sub": json.dumps(dashboard_body(settings), separators=(",", ":"))},
        },
    }
    outputs = {
        "MediaBucketName": {"Value": {"Ref": infra.bucket.logical_id}},
        "DashboardUrl": {
            "Value": {
                "Fn::Sub": "https://${AWS::Region}.console.aws.amazon.com/cloudwatch/home?region=${AWS::Region}"
                f"#dashboards:name={infra.dashboard}"
            }
        },
        "AlarmTopicArn": {"Value": {"Ref": "AlarmTopic"}},
        **{f"{q.logical_id}Url": {"Value": {"Ref": q.logical_id}} for q in infra.queues},
    }
    return {
        "Parameters": alarm_parameters(infra),
        "Conditions": {"HasAlarmEmail": {"Fn::Not": [{"Fn::Equals": [{"Ref": "AlarmEmail"}, ""]}]}},
        "Resources": template_resources,
        "Outputs": outputs,
    }


def package(stage: str, out_dir: Path, merge_template: Path) -> Path:
    """Run `chalice package` with the merge template (infra/lambda_build.py); returns the SAM template's path."""
    env = {**os.environ, "AWS_DEFAULT_REGION": os.environ.get("AWS_DEFAULT_REGION", "us-east-1")}
    lambda_build.chalice(["package", "--stage", stage, "--merge-template", str(merge_template), str(out_dir)], env=env)
    return out_dir / "sam.json"
