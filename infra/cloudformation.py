"""The stage's AWS resources as a CloudFormation fragment for `chalice package --merge-template`.

Generated, not hand-written, so it cannot drift from the code: table keys and indexes come
from the PynamoDB models, names, visibility timeouts and `maxReceiveCount` from the
stage's settings in `.chalice/config.json`. One stack then holds everything: tables, the
private encrypted bucket, both queues with their DLQs and redrive policies, the SES
identity, the CloudWatch dashboard and alarms, next to the functions chalice generates.

  python -m devtools.infra --stage dev --out build/infra-dev.json
  python -m devtools.infra --stage dev --package build/package-dev   # + chalice package
"""

from __future__ import annotations

import argparse
import json
import os
from pathlib import Path
from typing import Any

from chalice.constants import DEFAULT_LAMBDA_TIMEOUT

from chalicelib.platform.errors import RETRY_AFTER_SECONDS
from devtools import lambda_build
from devtools.stage import ROOT, stage_environment

# Logical ids chalice gives the functions (see `chalice package` output).
FUNCTIONS = {
    "api_handler": "APIHandler",
    "api_key_auth": "ApiKeyAuth",
    "media_worker": "MediaWorker",
    "default_worker": "DefaultWorker",
    "dead_letter_reconciler": "DeadLetterReconciler",
    "outbox_relay": "OutboxRelay",
}
WORKERS = {"media": "media_worker", "default": "default_worker"}
OLDEST_MESSAGE_ALARM_SECONDS = {"media": 600, "default": 900}


def _logical(name: str) -> str:
    return "".join(part.capitalize() for part in name.replace("_", "-").split("-"))


def function_name(settings: Any, name: str) -> str:
    """A function's name as `chalice deploy` gives it (`{app}-{stage}[-{function}]`)."""
    base = f"{settings.app_name}-{settings.stage}"
    return base if name == "api_handler" else f"{base}-{name}"


def response_types(settings: Any) -> list[str]:
    """The event source mappings' FunctionResponseTypes that match the workers' setting."""
    return ["ReportBatchItemFailures"] if settings.report_batch_item_failures else []


def check_time_limits(functions: dict[str, dict[str, Any]]) -> None:
    """Refuse a task whose `time_limit` exceeds the timeout of the function that runs it.

    Imports the app, so every task module it loads is registered.
    """
    import app  # noqa: F401 - registers every task
    from chalicelib.tasks.registry import registered_tasks

    for task in registered_tasks().values():
        if task.time_limit is None:
            continue
        worker = WORKERS[task.queue]
        timeout = int(functions.get(worker, {}).get("lambda_timeout", DEFAULT_LAMBDA_TIMEOUT))
        if task.time_limit > timeout:
            raise SystemExit(
                f"task {task.name}: time_limit {task.time_limit}s exceeds the {timeout}s timeout of {worker}, "
                "which would kill the whole batch; lower time_limit or raise lambda_timeout"
            )


def periodic_functions() -> dict[str, str]:
    """Logical ids of the scheduled functions of the app's periodic tasks (`@periodic_task`).

    Imports the app, so every periodic task is registered.
    """
    import app  # noqa: F401 - registers every periodic task
    from chalicelib.tasks.periodic import registered_periodic

    return {name: _logical(name) for name in registered_periodic()}


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


def function_settings(stage: str) -> dict[str, dict[str, Any]]:
    """Per-function settings of the stage (timeout, memory, policy file)."""
    config = json.loads((ROOT / ".chalice" / "config.json").read_text())
    functions: dict[str, dict[str, Any]] = config["stages"][stage].get("lambda_functions", {})
    return functions


def table_resource(model: Any) -> dict[str, Any]:
    """An AWS::DynamoDB::Table exactly as the PynamoDB model defines it."""
    schema = model._get_schema()
    properties: dict[str, Any] = {
        "TableName": model.Meta.table_name,
        "BillingMode": "PAY_PER_REQUEST",
        "AttributeDefinitions": schema["attribute_definitions"],
        "KeySchema": sorted(schema["key_schema"], key=lambda k: k["KeyType"] != "HASH"),
        "PointInTimeRecoverySpecification": {"PointInTimeRecoveryEnabled": True},
        "SSESpecification": {"SSEEnabled": True},
    }
    indexes = [
        {
            "IndexName": index["index_name"],
            "KeySchema": sorted(index["key_schema"], key=lambda k: k["KeyType"] != "HASH"),
            "Projection": index["projection"],
        }
        for index in schema["global_secondary_indexes"]
    ]
    if indexes:
        properties["GlobalSecondaryIndexes"] = indexes
    ttl = getattr(model.Meta, "ttl_attribute", None) or _ttl_attribute(model)
    if ttl:
        properties["TimeToLiveSpecification"] = {"AttributeName": ttl, "Enabled": True}
    return {
        "Type": "AWS::DynamoDB::Table",
        "DeletionPolicy": "Retain",
        "UpdateReplacePolicy": "Retain",
        "Properties": properties,
    }


def _ttl_attribute(model: Any) -> str | None:
    from pynamodb.attributes import TTLAttribute

    for name, attribute in model.get_attributes().items():
        if isinstance(attribute, TTLAttribute):
            return attribute.attr_name or name
    return None


def _arn(service: str, resource: str) -> dict[str, str]:
    return {"Fn::Sub": f"arn:${{AWS::Partition}}:{service}:${{AWS::Region}}:${{AWS::AccountId}}:{resource}"}


def queue_resources(queue: Any, timeout: int) -> dict[str, Any]:
    """A work queue, its DLQ and the redrive policies joining them."""
    logical = _logical(queue.key)
    if queue.visibility_timeout < 6 * timeout:
        raise SystemExit(
            f"{queue.name}: visibility timeout {queue.visibility_timeout}s is below 6 x the function timeout "
            f"({timeout}s), as AWS advises for SQS event sources"
        )
    return {
        f"{logical}DeadLetterQueue": {
            "Type": "AWS::SQS::Queue",
            "Properties": {
                "QueueName": queue.dlq_name,
                "MessageRetentionPeriod": 14 * 24 * 3600,
                "SqsManagedSseEnabled": True,
                "RedriveAllowPolicy": {"redrivePermission": "byQueue", "sourceQueueArns": [_arn("sqs", queue.name)]},
            },
        },
        f"{logical}Queue": {
            "Type": "AWS::SQS::Queue",
            "Properties": {
                "QueueName": queue.name,
                "VisibilityTimeout": queue.visibility_timeout,
                "MessageRetentionPeriod": 4 * 24 * 3600,
                "ReceiveMessageWaitTimeSeconds": 20,
                "SqsManagedSseEnabled": True,
                "RedrivePolicy": {
                    "deadLetterTargetArn": {"Fn::GetAtt": [f"{logical}DeadLetterQueue", "Arn"]},
                    "maxReceiveCount": queue.max_receive_count,
                },
            },
        },
    }


def bucket_resource(name: str) -> dict[str, Any]:
    """The media bucket: private, owner-enforced, encrypted, TLS only."""
    return {
        "MediaBucket": {
            "Type": "AWS::S3::Bucket",
            "DeletionPolicy": "Retain",
            "UpdateReplacePolicy": "Retain",
            "Properties": {
                "BucketName": name,
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
            },
        },
        "MediaBucketPolicy": {
            "Type": "AWS::S3::BucketPolicy",
            "Properties": {
                "Bucket": {"Ref": "MediaBucket"},
                "PolicyDocument": {
                    "Version": "2012-10-17",
                    "Statement": [
                        {
                            "Sid": "DenyInsecureTransport",
                            "Effect": "Deny",
                            "Principal": "*",
                            "Action": "s3:*",
                            "Resource": [
                                {"Fn::GetAtt": ["MediaBucket", "Arn"]},
                                {"Fn::Sub": "${MediaBucket.Arn}/*"},
                            ],
                            "Condition": {"Bool": {"aws:SecureTransport": "false"}},
                        }
                    ],
                },
            },
        },
    }


def upload_resources(settings: Any, bucket: dict[str, Any]) -> dict[str, Any]:
    """Direct uploads: S3 sends ObjectCreated under uploads/ to the media queue; CORS; lifecycle.

    S3 checks that it may send to the queue when the notification is created, so the
    queue policy must exist first. The policy names the bucket by its ARN built from the
    (fixed) bucket name, not by `Fn::GetAtt`, so the order is queue → queue policy →
    bucket with no cycle. `bucket` (the MediaBucket resource) is completed in place.
    """
    from devtools.resources import upload_cors_rules, upload_lifecycle_rule

    queue = f"{_logical(settings.media.key)}Queue"
    rule = upload_lifecycle_rule(settings)
    bucket["DependsOn"] = ["MediaUploadEventsQueuePolicy"]
    bucket["Properties"]["NotificationConfiguration"] = {
        "QueueConfigurations": [
            {
                "Event": "s3:ObjectCreated:*",
                "Queue": {"Fn::GetAtt": [queue, "Arn"]},
                "Filter": {"S3Key": {"Rules": [{"Name": "prefix", "Value": rule["Filter"]["Prefix"]}]}},
            }
        ]
    }
    bucket["Properties"]["CorsConfiguration"] = {
        "CorsRules": [
            {
                "AllowedOrigins": cors["AllowedOrigins"],
                "AllowedMethods": cors["AllowedMethods"],
                "AllowedHeaders": cors["AllowedHeaders"],
                "ExposedHeaders": cors["ExposeHeaders"],
                "MaxAge": cors["MaxAgeSeconds"],
            }
            for cors in upload_cors_rules(settings)
        ]
    }
    bucket["Properties"]["LifecycleConfiguration"] = {
        "Rules": [
            {
                "Id": rule["ID"],
                "Status": rule["Status"],
                "Prefix": rule["Filter"]["Prefix"],
                "ExpirationInDays": rule["Expiration"]["Days"],
                "AbortIncompleteMultipartUpload": rule["AbortIncompleteMultipartUpload"],
            }
        ]
    }
    return {
        "MediaUploadEventsQueuePolicy": {
            "Type": "AWS::SQS::QueuePolicy",
            "Properties": {
                "Queues": [{"Ref": queue}],
                "PolicyDocument": {
                    "Version": "2012-10-17",
                    "Statement": [
                        {
                            "Sid": "S3UploadEvents",
                            "Effect": "Allow",
                            "Principal": {"Service": "s3.amazonaws.com"},
                            "Action": "sqs:SendMessage",
                            "Resource": {"Fn::GetAtt": [queue, "Arn"]},
                            "Condition": {
                                "ArnEquals": {
                                    "aws:SourceArn": {
                                        "Fn::Sub": f"arn:${{AWS::Partition}}:s3:::{settings.media_bucket}"
                                    }
                                },
                                "StringEquals": {"aws:SourceAccount": {"Ref": "AWS::AccountId"}},
                            },
                        }
                    ],
                },
            },
        }
    }


def alarm_resources(queues: list[Any]) -> dict[str, Any]:
    """An SNS topic (with an optional e-mail subscription) and the queue alarms."""
    resources: dict[str, Any] = {
        "AlarmTopic": {"Type": "AWS::SNS::Topic", "Properties": {"TopicName": f"{queues[0].name}-alarms"}},
        "AlarmEmailSubscription": {
            "Type": "AWS::SNS::Subscription",
            "Condition": "HasAlarmEmail",
            "Properties": {"TopicArn": {"Ref": "AlarmTopic"}, "Protocol": "email", "Endpoint": {"Ref": "AlarmEmail"}},
        },
    }
    for queue in queues:
        logical = _logical(queue.key)
        common = {
            "Namespace": "AWS/SQS",
            "Period": 60,
            "EvaluationPeriods": 1,
            "ComparisonOperator": "GreaterThanThreshold",
            "TreatMissingData": "notBreaching",
            "AlarmActions": [{"Ref": "AlarmTopic"}],
            "OKActions": [{"Ref": "AlarmTopic"}],
        }
        resources[f"{logical}DeadLetterAlarm"] = {
            "Type": "AWS::CloudWatch::Alarm",
            "Properties": {
                **common,
                "AlarmName": f"{queue.dlq_name}-not-empty",
                "AlarmDescription": f"Messages in {queue.dlq_name}: tasks failed for good. "
                "Read GET /tasks?status=FAILURE, fix, then POST /queues/{name}/redrive.",
                "MetricName": "ApproximateNumberOfMessagesVisible",
                "Dimensions": [{"Name": "QueueName", "Value": queue.dlq_name}],
                "Statistic": "Maximum",
                "Threshold": 0,
            },
        }
        resources[f"{logical}OldestMessageAlarm"] = {
            "Type": "AWS::CloudWatch::Alarm",
            "Properties": {
                **common,
                "AlarmName": f"{queue.name}-oldest-message-age",
                "AlarmDescription": f"The oldest message in {queue.name} waits too long: consumers lag or fail.",
                "MetricName": "ApproximateAgeOfOldestMessage",
                "Dimensions": [{"Name": "QueueName", "Value": queue.name}],
                "Statistic": "Maximum",
                "EvaluationPeriods": 5,
                "Threshold": {"Ref": f"{logical}OldestMessageAlarmSeconds"},
            },
        }
    return resources


def dashboard_body(settings: Any) -> dict[str, Any]:
    """The CloudWatch dashboard: queues, DLQs, task outcomes and the functions."""
    region = "${AWS::Region}"
    queues = list(settings.queues.values())

    def widget(title: str, metrics: list[list[Any]], x: int, y: int, stat: str = "Sum") -> dict[str, Any]:
        return {
            "type": "metric",
            "x": x,
            "y": y,
            "width": 12,
            "height": 6,
            "properties": {"title": title, "region": region, "stat": stat, "period": 60, "metrics": metrics},
        }

    def sqs(metric: str, names: list[str]) -> list[list[Any]]:
        return [["AWS/SQS", metric, "QueueName", name] for name in names]

    def app_metric(metric: str, tasks: list[str]) -> list[list[Any]]:
        dims = ["service", settings.app_name, "stage", settings.stage]
        return [["Bookshelf", metric, *dims, "task", task] for task in tasks]

    def lam(metric: str) -> list[list[Any]]:
        return [["AWS/Lambda", metric, "FunctionName", function_name(settings, name)] for name in FUNCTIONS]

    tasks = ["covers.resize", "books.notify_subscribers", "mail.fanout_page", "mail.resend"]
    work, dead = [q.name for q in queues], [q.dlq_name for q in queues]
    widgets = [
        widget("Queue depth (visible)", sqs("ApproximateNumberOfMessagesVisible", work), 0, 0, "Maximum"),
        widget("Dead-letter queue depth", sqs("ApproximateNumberOfMessagesVisible", dead), 12, 0, "Maximum"),
        widget("Age of oldest message (s)", sqs("ApproximateAgeOfOldestMessage", work), 0, 6, "Maximum"),
        widget("In flight", sqs("ApproximateNumberOfMessagesNotVisible", work), 12, 6, "Maximum"),
        widget("Tasks succeeded", app_metric("TaskSucceeded", tasks), 0, 12),
        widget("Tasks failed / retried", app_metric("TaskFailed", tasks) + app_metric("TaskRetried", tasks), 12, 12),
        widget("Task duration p95 (ms)", app_metric("TaskDuration", tasks), 0, 18, "p95"),
        widget(
            "Emails sent, cold starts",
            [
                ["Bookshelf", "EmailsSent", "service", settings.app_name, "stage", settings.stage],
                *[
                    ["Bookshelf", "ColdStart", "service", settings.app_name, "stage", settings.stage, "function", f]
                    for f in FUNCTIONS
                ],
            ],
            12,
            18,
        ),
        widget("Lambda errors", lam("Errors"), 0, 24),
        widget("Lambda throttles", lam("Throttles"), 12, 24),
        widget("Lambda concurrent executions", lam("ConcurrentExecutions"), 0, 30, "Maximum"),
        widget("Lambda duration p95 (ms)", lam("Duration"), 12, 30, "p95"),
    ]
    return {"widgets": widgets}


# API Gateway's own answers (no route, no or a refused key, a failed authorizer, a body too
# large, a timeout, throttling) in the app's one error shape {"error", "message", "fields"}.
# type: (status or None to keep API Gateway's, error code, message or None for API Gateway's,
# extra headers). API Gateway has no route for an unknown path and answers it as
# MISSING_AUTHENTICATION_TOKEN (403): that is a 404 here. An exception in the authorizer
# (SSM down) is AUTHORIZER_FAILURE (500): a 503 with Retry-After, like every outage.
RETRY_AFTER = {"Retry-After": str(RETRY_AFTER_SECONDS)}  # the routes' and the local gateway's value
GATEWAY_RESPONSES: dict[str, tuple[int | None, str, str | None, dict[str, str]]] = {
    "DEFAULT_4XX": (None, "BadRequest", None, {}),
    "DEFAULT_5XX": (None, "InternalServerError", None, {}),
    "UNAUTHORIZED": (
        401,
        "Unauthorized",
        "an API key is required: Authorization: Bearer <key>",
        {"WWW-Authenticate": "Bearer"},
    ),
    "ACCESS_DENIED": (403, "Forbidden", "this API key is not valid for this route", {}),
    "MISSING_AUTHENTICATION_TOKEN": (404, "NotFound", "no such route: check the method and the path", {}),
    "AUTHORIZER_FAILURE": (503, "ServiceUnavailable", "the API key store is unavailable; try again", RETRY_AFTER),
    "AUTHORIZER_CONFIGURATION_ERROR": (
        503,
        "ServiceUnavailable",
        "the authorizer is unavailable; try again",
        RETRY_AFTER,
    ),
    "UNSUPPORTED_MEDIA_TYPE": (415, "UnsupportedMediaType", None, {}),
    "REQUEST_TOO_LARGE": (413, "PayloadTooLarge", "the request is larger than API Gateway accepts (10 MB)", {}),
    "INTEGRATION_TIMEOUT": (504, "GatewayTimeout", "the API did not answer in time; try again", {}),
    "THROTTLED": (429, "TooManyRequests", "too many requests; slow down", RETRY_AFTER),
}


def _error_template(code: str, message: str | None) -> str:
    # `$context.error.messageString` is API Gateway's message already quoted as a JSON string;
    # fixed messages are JSON-encoded here. No request value (path, header) is echoed, so the
    # body stays valid JSON whatever the client sends.
    quoted = json.dumps(message) if message is not None else "$context.error.messageString"
    return f'{{"error": {json.dumps(code)}, "message": {quoted}, "fields": []}}'


def gateway_responses() -> dict[str, dict[str, Any]]:
    """The REST API's gateway responses, as the `x-amazon-apigateway-gateway-responses` extension.

    Inside the API definition rather than as AWS::ApiGateway::GatewayResponse resources: SAM
    puts the definition with mode=overwrite on every update, which drops gateway responses
    made outside it (serverless-application-model#390), and a change here then also makes a
    new deployment, so it goes live.
    """
    responses = {}
    for kind, (status, code, message, headers) in GATEWAY_RESPONSES.items():
        response: dict[str, Any] = {
            "responseParameters": {f"gatewayresponse.header.{k}": f"'{v}'" for k, v in headers.items()},
            "responseTemplates": {"application/json": _error_template(code, message)},
        }
        if status is not None:
            response["statusCode"] = str(status)
        responses[kind] = response
    return responses


def apply_gateway_responses(deployed_resources: list[dict[str, Any]], stage: str) -> list[str]:
    """Put the gateway responses on the REST API `chalice deploy` made, then redeploy its stage.

    `chalice deploy` builds the API from its own swagger, with no way to add the extension,
    and overwrites the API on every deploy; so this runs after each one. Takes the
    `resources` of `.chalice/deployed/<stage>.json`; returns the response types put.
    """
    from chalicelib.platform.aws import client

    rest_apis = [r for r in deployed_resources if r.get("resource_type") == "rest_api"]
    if not rest_apis:
        return []
    rest_api_id = rest_apis[0]["rest_api_id"]
    config = json.loads((ROOT / ".chalice" / "config.json").read_text())
    stage_name = config["stages"][stage].get("api_gateway_stage", config.get("api_gateway_stage", "api"))
    apigateway = client("apigateway")
    for kind, response in gateway_responses().items():
        kwargs: dict[str, Any] = {
            "restApiId": rest_api_id,
            "responseType": kind,
            "responseParameters": response["responseParameters"],
            "responseTemplates": response["responseTemplates"],
        }
        if "statusCode" in response:
            kwargs["statusCode"] = response["statusCode"]
        apigateway.put_gateway_response(**kwargs)
    apigateway.create_deployment(restApiId=rest_api_id, stageName=stage_name, description="gateway responses")
    return sorted(GATEWAY_RESPONSES)


def build(stage: str) -> dict[str, Any]:
    """The merge template for `stage` (the environment must hold the stage's settings)."""
    from chalicelib.platform.config import get_settings
    from chalicelib.tables import ALL_MODELS

    settings = get_settings()
    functions = function_settings(stage)
    queues = list(settings.queues.values())
    resources: dict[str, Any] = {}
    for model in ALL_MODELS:
        resources[f"{_logical(model.Meta.table_name.removeprefix(f'{settings.app_name}-{settings.stage}-'))}Table"] = (
            table_resource(model)
        )
    resources.update(bucket_resource(settings.media_bucket))
    for queue in queues:
        worker = WORKERS[queue.key]
        resources.update(queue_resources(queue, int(functions.get(worker, {}).get("lambda_timeout", 60))))
        # The event source mapping names its queue by ARN string: create the queue first.
        resources[FUNCTIONS[worker]] = {"DependsOn": [f"{_logical(queue.key)}Queue"]}
    resources.update(upload_resources(settings, resources["MediaBucket"]))
    for name, logical in {**FUNCTIONS, **periodic_functions()}.items():
        # The names `chalice deploy` gives, so log groups and IAM scopes match on both paths.
        resources.setdefault(logical, {})["Properties"] = {"FunctionName": function_name(settings, name)}
    check_time_limits(functions)
    for worker in WORKERS.values():
        # Deep-merged into the event chalice generates (chalice cannot set it: aws/chalice#2029);
        # the same setting is exported to the function as REPORT_BATCH_ITEM_FAILURES, so the
        # handler's answer and the mapping agree.
        logical = FUNCTIONS[worker]
        if response_types(settings):
            resources[logical]["Properties"]["Events"] = {
                f"{logical}SqsEventSource": {"Properties": {"FunctionResponseTypes": response_types(settings)}}
            }
    resources["MailSenderIdentity"] = {
        "Type": "AWS::SES::EmailIdentity",
        "Properties": {"EmailIdentity": settings.mail_sender},
    }
    resources["SigningSecret"] = {
        "Type": "AWS::SecretsManager::Secret",
        "Properties": {
            "Name": settings.signing_secret_name,
            "Description": "HMAC key for cursors, dashboard sessions and mail links",
            "GenerateSecretString": {"PasswordLength": 64, "ExcludePunctuation": True},
        },
    }
    resources.update(alarm_resources(queues))
    # Merged by `chalice package --merge-template` into the REST API chalice generates.
    resources["RestAPI"] = {
        "Properties": {"DefinitionBody": {"x-amazon-apigateway-gateway-responses": gateway_responses()}}
    }
    if snapstart_enabled():
        _deep_merge(resources, snapstart_resources(sorted({*FUNCTIONS.values(), *periodic_functions().values()})))
    resources["Dashboard"] = {
        "Type": "AWS::CloudWatch::Dashboard",
        "Properties": {
            "DashboardName": f"{settings.app_name}-{settings.stage}",
            "DashboardBody": {"Fn::Sub": json.dumps(dashboard_body(settings), separators=(",", ":"))},
        },
    }
    parameters: dict[str, Any] = {
        "AlarmEmail": {
            "Type": "String",
            "Default": "",
            "Description": "E-mail address that receives the alarms (empty: none)",
        }
    }
    for queue in queues:
        parameters[f"{_logical(queue.key)}OldestMessageAlarmSeconds"] = {
            "Type": "Number",
            "Default": OLDEST_MESSAGE_ALARM_SECONDS.get(queue.key, 900),
            "MinValue": 60,
            "Description": f"Alarm when the oldest message in {queue.name} is older than this",
        }
    outputs = {
        "MediaBucketName": {"Value": {"Ref": "MediaBucket"}},
        "DashboardUrl": {
            "Value": {
                "Fn::Sub": "https://${AWS::Region}.console.aws.amazon.com/cloudwatch/home?region=${AWS::Region}"
                f"#dashboards:name={settings.app_name}-{settings.stage}"
            }
        },
        "AlarmTopicArn": {"Value": {"Ref": "AlarmTopic"}},
        **{f"{_logical(q.key)}QueueUrl": {"Value": {"Ref": f"{_logical(q.key)}Queue"}} for q in queues},
    }
    return {
        "Parameters": parameters,
        "Conditions": {"HasAlarmEmail": {"Fn::Not": [{"Fn::Equals": [{"Ref": "AlarmEmail"}, ""]}]}},
        "Resources": resources,
        "Outputs": outputs,
    }


def apply_monitoring() -> dict[str, Any]:
    """Create or update the dashboard, alarm topic and alarms through the APIs.

    The `chalice deploy` path has no CloudFormation stack; this puts the very same
    dashboard and alarms as the template, resolved for the current region.
    """
    from chalicelib.platform.aws import client
    from chalicelib.platform.config import get_settings

    settings = get_settings()
    cloudwatch = client("cloudwatch")
    body = json.dumps(dashboard_body(settings)).replace("${AWS::Region}", settings.region)
    name = f"{settings.app_name}-{settings.stage}"
    cloudwatch.put_dashboard(DashboardName=name, DashboardBody=body)
    queues = list(settings.queues.values())
    topic = client("sns").create_topic(Name=f"{queues[0].name}-alarms")["TopicArn"]
    alarms = []
    for key, resource in alarm_resources(queues).items():
        if resource["Type"] != "AWS::CloudWatch::Alarm":
            continue
        props = dict(resource["Properties"])
        props["AlarmActions"] = props["OKActions"] = [topic]
        if isinstance(props["Threshold"], dict):
            props["Threshold"] = OLDEST_MESSAGE_ALARM_SECONDS.get(key.removesuffix("OldestMessageAlarm").lower(), 900)
        props["Threshold"] = float(props["Threshold"])
        cloudwatch.put_metric_alarm(**props)
        alarms.append(props["AlarmName"])
    return {"dashboard": name, "alarm_topic": topic, "alarms": alarms}


def use_stage(stage: str) -> None:
    """Export the stage's settings (variables already set win, e.g. RESOURCE_PREFIX)."""
    for name, value in stage_environment(stage).items():
        os.environ.setdefault(name, value)
    os.environ.setdefault("AWS_DEFAULT_REGION", "us-east-1")


def package(stage: str, out_dir: Path, merge_template: Path) -> Path:
    """Run `chalice package` with the merge template (devtools/lambda_build.py); returns the SAM template's path."""
    env = {**os.environ, "AWS_DEFAULT_REGION": os.environ.get("AWS_DEFAULT_REGION", "us-east-1")}
    lambda_build.chalice(["package", "--stage", stage, "--merge-template", str(merge_template), str(out_dir)], env=env)
    return out_dir / "sam.json"


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m devtools.infra", description=__doc__.splitlines()[0])
    parser.add_argument("--stage", default=os.environ.get("STAGE", "dev"))
    parser.add_argument("--out", type=Path, help="where to write the merge template (default build/infra-STAGE.json)")
    parser.add_argument("--package", type=Path, metavar="DIR", help="also run chalice package into DIR")
    args = parser.parse_args(argv)
    use_stage(args.stage)
    out = (args.out or ROOT / "build" / f"infra-{args.stage}.json").resolve()
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(build(args.stage), indent=2) + "\n")
    print(f"wrote {out}")
    if args.package:
        print(f"packaged {package(args.stage, args.package.resolve(), out)}")


if __name__ == "__main__":
    main()
