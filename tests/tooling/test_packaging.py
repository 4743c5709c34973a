"""The deployment: `chalice package --merge-template` yields one template that lints clean and
carries the concurrency, batch sizes, timeouts, redrive policies, alarms and IAM scopes."""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from pathlib import Path
from typing import Any, cast

import pytest

# One xdist worker takes the whole file (--dist loadgroup):
# its module fixture runs `chalice package` once.
pytestmark = pytest.mark.xdist_group("packaging")


ROOT = Path(__file__).resolve().parents[2]
UNSCOPABLE_ACTIONS = {
    "ses:GetSendQuota",
    "ses:GetAccount",
    "lambda:ListEventSourceMappings",
    "cloudwatch:GetMetricData",
}
# Variables the tests set that must not leak into the `dev` stage's template.
_TEST_ONLY = ("STAGE", "RESOURCE_PREFIX", "AWS_ENDPOINT_URL", "AUTH_MODE", "TASKS_EAGER")


def _clean_env() -> dict[str, str]:
    from session_env import TEST_ENV

    env = {k: v for k, v in os.environ.items() if k not in TEST_ENV and k not in _TEST_ONLY}
    env["AWS_DEFAULT_REGION"] = "us-east-1"
    return env


def _package(tmp_path_factory: pytest.TempPathFactory, **extra_env: str) -> Path:
    from infra import lambda_build, pythons

    try:
        lambda_build.runtime_python()  # chalice runs under the runtime's Python 3.13
    except pythons.PythonNotFound as missing:
        pytest.skip(str(missing))
    out = tmp_path_factory.mktemp("package")
    subprocess.run(
        [
            sys.executable,
            "-m",
            "infra",
            "--stage",
            "dev",
            "--out",
            str(out / "infra.json"),
            "--package",
            str(out / "dev"),
        ],
        cwd=ROOT,
        env={**_clean_env(), **extra_env},
        check=True,
        capture_output=True,
    )
    return out / "dev"


@pytest.fixture(scope="module")
def package_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return _package(tmp_path_factory)


@pytest.fixture(scope="module")
def template(package_dir: Path) -> dict[str, Any]:
    return cast("dict[str, Any]", json.loads((package_dir / "sam.json").read_text()))


@pytest.fixture(scope="module")
def stage_functions() -> dict[str, Any]:
    return cast(
        "dict[str, Any]",
        json.loads((ROOT / ".chalice" / "config.json").read_text())["stages"]["dev"]["lambda_functions"],
    )


def _of_type(template: dict[str, Any], kind: str) -> dict[str, dict[str, Any]]:
    return {k: v for k, v in template["Resources"].items() if v["Type"] == kind}


def test_packaged_template_passes_cfn_lint(package_dir: Path) -> None:
    lint = subprocess.run(
        [str(Path(sys.executable).parent / "cfn-lint"), str(package_dir / "sam.json")],
        capture_output=True,
        text=True,
    )
    assert lint.returncode == 0, lint.stdout + lint.stderr


def test_functions_run_on_the_runtime_the_zip_is_built_for(template: dict[str, Any]) -> None:
    """python3.13 (Amazon Linux 2023) on x86_64: the zip's wheels are chosen for exactly that
    (tests/tooling/test_package_zip.py); chalice took python3.11 from the project's venv before."""
    functions = _of_type(template, "AWS::Serverless::Function").values()
    assert {f["Properties"]["Runtime"] for f in functions} == {"python3.13"}
    assert {tuple(f["Properties"]["Architectures"]) for f in functions} == {("x86_64",)}


def test_event_source_mappings_carry_batch_size_and_maximum_concurrency(template: dict[str, Any]) -> None:
    expected = {"MediaWorker": ("bookshelf-dev-media", 1, 2), "DefaultWorker": ("bookshelf-dev-default", 10, 10)}
    for logical, (queue, batch, concurrency) in expected.items():
        function = template["Resources"][logical]
        (source,) = function["Properties"]["Events"].values()
        assert source["Type"] == "SQS"
        props = source["Properties"]
        assert props["Queue"]["Fn::Sub"].endswith(f":{queue}")
        assert props["BatchSize"] == batch
        assert props["ScalingConfig"] == {"MaximumConcurrency": concurrency}
        # The consumer contract: handlers return batchItemFailures, which only a mapping with
        # this response type honours; the functions are told so by the same setting.
        assert props["FunctionResponseTypes"] == ["ReportBatchItemFailures"]
        assert function["Properties"]["Environment"]["Variables"]["REPORT_BATCH_ITEM_FAILURES"] == "true"
        assert f"{queue.split('-')[-1].capitalize()}Queue" in function["DependsOn"]


def test_visibility_timeout_is_at_least_six_times_the_function_timeout(
    template: dict[str, Any], stage_functions: dict[str, Any]
) -> None:
    resources = template["Resources"]
    for queue, function, name in (
        ("MediaQueue", "MediaWorker", "media_worker"),
        ("DefaultQueue", "DefaultWorker", "default_worker"),
    ):
        timeout = resources[function]["Properties"]["Timeout"]
        assert timeout == stage_functions[name]["lambda_timeout"]
        assert resources[queue]["Properties"]["VisibilityTimeout"] >= 6 * timeout


def test_each_queue_redrives_to_its_own_dead_letter_queue(template: dict[str, Any]) -> None:
    resources = template["Resources"]
    for key in ("Media", "Default"):
        policy = resources[f"{key}Queue"]["Properties"]["RedrivePolicy"]
        assert policy["deadLetterTargetArn"] == {"Fn::GetAtt": [f"{key}DeadLetterQueue", "Arn"]}
        assert policy["maxReceiveCount"] == 5
        dlq = resources[f"{key}DeadLetterQueue"]["Properties"]
        assert dlq["QueueName"] == resources[f"{key}Queue"]["Properties"]["QueueName"] + "-dlq"
        assert dlq["MessageRetentionPeriod"] == 14 * 24 * 3600


def test_bucket_is_private_and_encrypted(template: dict[str, Any]) -> None:
    (bucket,) = _of_type(template, "AWS::S3::Bucket").values()
    props = bucket["Properties"]
    assert all(props["PublicAccessBlockConfiguration"].values()) and len(props["PublicAccessBlockConfiguration"]) == 4
    assert props["OwnershipControls"]["Rules"] == [{"ObjectOwnership": "BucketOwnerEnforced"}]
    rule = props["BucketEncryption"]["ServerSideEncryptionConfiguration"][0]
    assert rule["ServerSideEncryptionByDefault"]["SSEAlgorithm"] in ("AES256", "aws:kms")


def test_alarms_watch_every_dead_letter_queue_and_the_oldest_message(template: dict[str, Any]) -> None:
    alarms = [a["Properties"] for a in _of_type(template, "AWS::CloudWatch::Alarm").values()]
    watched = {(a["MetricName"], a["Dimensions"][0]["Value"]) for a in alarms}
    for queue in ("bookshelf-dev-media", "bookshelf-dev-default"):
        assert ("ApproximateNumberOfMessagesVisible", f"{queue}-dlq") in watched
        assert ("ApproximateAgeOfOldestMessage", queue) in watched
    assert all(a["AlarmActions"] == [{"Ref": "AlarmTopic"}] for a in alarms)


def test_dashboard_shows_queues_dead_letters_tasks_and_functions(template: dict[str, Any]) -> None:
    (dashboard,) = _of_type(template, "AWS::CloudWatch::Dashboard").values()
    body_template = dashboard["Properties"]["DashboardBody"]["Fn::Sub"]
    assert set(re.findall(r"\$\{([^}]+)\}", body_template)) == {"AWS::Region"}
    body = json.loads(body_template.replace("${AWS::Region}", "us-east-1"))
    metrics = [m for widget in body["widgets"] for m in widget["properties"]["metrics"]]
    names = {m[1] for m in metrics}
    assert {"ApproximateNumberOfMessagesVisible", "ApproximateAgeOfOldestMessage"} <= names
    assert {"TaskSucceeded", "TaskFailed", "TaskRetried", "TaskDuration"} <= names
    assert {"Errors", "Throttles", "ConcurrentExecutions"} <= names
    dims = {value for m in metrics for value in m[2:]}
    for queue in ("bookshelf-dev-media", "bookshelf-dev-default"):
        assert queue in dims and f"{queue}-dlq" in dims
    functions = {p["Properties"].get("FunctionName") for p in _of_type(template, "AWS::Serverless::Function").values()}
    assert functions <= dims and len(functions) == 6  # API, authorizer, two workers, reconciler, outbox relay


def test_each_function_has_its_own_least_privilege_policy(
    template: dict[str, Any], stage_functions: dict[str, Any]
) -> None:
    roles = _of_type(template, "AWS::IAM::Role")
    functions = _of_type(template, "AWS::Serverless::Function")
    assert len(roles) == len(functions) == len(stage_functions)
    seen = set()
    for function in functions.values():
        role = roles[function["Properties"]["Role"]["Fn::GetAtt"][0]]
        (policy,) = role["Properties"]["Policies"]
        document = policy["PolicyDocument"]
        matching = [
            name
            for name, cfg in stage_functions.items()
            if json.loads((ROOT / ".chalice" / cfg["iam_policy_file"]).read_text()) == document
        ]
        assert len(matching) == 1
        seen.add(matching[0])
        for statement in document["Statement"]:
            actions = statement["Action"] if isinstance(statement["Action"], list) else [statement["Action"]]
            resources = statement["Resource"] if isinstance(statement["Resource"], list) else [statement["Resource"]]
            assert "*" not in actions and not any(a.endswith(":*") for a in actions)
            # A few read-only actions have no resource-level permissions in IAM: only they may name "*".
            assert "*" not in resources or set(actions) <= UNSCOPABLE_ACTIONS, statement
    assert seen == set(stage_functions)


def test_api_gzips_answers_and_serves_the_dashboard_assets_as_text(template: dict[str, Any], package_dir: Path) -> None:
    """The dashboard's page and assets travel compressed (gzip over 1 KiB), as UTF-8 text, not binary."""
    (api,) = _of_type(template, "AWS::Serverless::Api").values()
    assert api["Properties"]["MinimumCompressionSize"] == 1024
    binary = api["Properties"]["DefinitionBody"]["x-amazon-apigateway-binary-media-types"]
    assert not [t for t in binary if t.startswith("text/") or t in ("*/*", "application/json")]
    import zipfile

    with zipfile.ZipFile(package_dir / "deployment.zip") as package:
        shipped = set(package.namelist())
    assert {f"chalicelib/dashboard/static/{name}" for name in ("index.html", "app.js", "app.css")} <= shipped


def test_table_definitions_match_the_emulator_tables_made_by_pynamodb(aws: Any, settings: Any) -> None:
    """The template's tables and the ones PynamoDB creates locally have the same keys and indexes."""
    from chalicelib.tables import ALL_MODELS
    from infra import cloudformation, model

    def table_resource(m: Any) -> dict[str, Any]:
        return cloudformation.table_resource(model.table(m, f"{settings.app_name}-{settings.stage}"))

    for m in ALL_MODELS:
        described = aws("dynamodb").describe_table(TableName=m.Meta.table_name)["Table"]
        props = table_resource(m)["Properties"]
        assert props["KeySchema"] == sorted(described["KeySchema"], key=lambda k: k["KeyType"] != "HASH")
        assert {(a["AttributeName"], a["AttributeType"]) for a in props["AttributeDefinitions"]} == {
            (a["AttributeName"], a["AttributeType"]) for a in described["AttributeDefinitions"]
        }
        indexes = {
            i["IndexName"]: sorted(i["KeySchema"], key=lambda k: k["KeyType"] != "HASH")
            for i in described.get("GlobalSecondaryIndexes", [])
        }
        assert {i["IndexName"]: i["KeySchema"] for i in props.get("GlobalSecondaryIndexes", [])} == indexes
    ttl = aws("dynamodb").describe_time_to_live(TableName=settings.tasks_table)["TimeToLiveDescription"]
    from chalicelib.tasks.models import TaskRecord

    assert table_resource(TaskRecord)["Properties"]["TimeToLiveSpecification"]["AttributeName"] == ttl["AttributeName"]


def test_response_types_follow_the_setting() -> None:
    from types import SimpleNamespace

    from infra.functions import response_types

    assert response_types(SimpleNamespace(report_batch_item_failures=True)) == ["ReportBatchItemFailures"]
    assert response_types(SimpleNamespace(report_batch_item_failures=False)) == []


def test_a_time_limit_beyond_the_function_timeout_is_refused(monkeypatch: pytest.MonkeyPatch) -> None:
    import app  # noqa: F401 - fills the registry first: registered during the swap, the app's tasks would vanish after it
    from chalicelib.tasks import decorator, registry
    from infra.functions import check_time_limits, function_settings

    # Only the application's tasks (the test modules register tasks of their own), restored afterwards.
    app_tasks = {name: t for name, t in registry._REGISTRY.items() if not name.startswith("tests.")}
    monkeypatch.setattr(registry, "_REGISTRY", app_tasks)
    functions = function_settings("dev")
    check_time_limits(functions)  # the application's own tasks fit
    timeout = functions["default_worker"]["lambda_timeout"]

    @decorator.task("tests.packaging.too_slow", time_limit=timeout + 1)
    def too_slow() -> None:
        return None

    with pytest.raises(SystemExit, match=r"tests\.packaging\.too_slow: time_limit"):
        check_time_limits(functions)


def test_every_protected_route_runs_the_custom_authorizer(template: dict[str, Any]) -> None:
    """An authorizer named `api_key` was overwritten in chalice's swagger by API Gateway's built-in
    API-key scheme (`x-api-key`), so deployed, the Lambda authorizer never ran."""
    body = template["Resources"]["RestAPI"]["Properties"]["DefinitionBody"]
    definitions = body["securityDefinitions"]
    secured = [
        (path, method, op["security"])
        for path, ops in body["paths"].items()
        for method, op in ops.items()
        if isinstance(op, dict) and "security" in op
    ]
    assert len(secured) >= 9
    for path, method, security in secured:
        for requirement in security:
            (name,) = requirement
            definition = definitions[name]
            assert definition.get("x-amazon-apigateway-authtype") == "custom", (path, method, definition)
            assert definition["name"] == "Authorization"
            authorizer = definition["x-amazon-apigateway-authorizer"]
            assert authorizer["type"] == "token" and authorizer["authorizerResultTtlInSeconds"] == 300


EXPECTED_GATEWAY_RESPONSES = {
    "DEFAULT_4XX": (None, "BadRequest"),
    "DEFAULT_5XX": (None, "InternalServerError"),
    "UNAUTHORIZED": ("401", "Unauthorized"),
    "ACCESS_DENIED": ("403", "Forbidden"),
    "MISSING_AUTHENTICATION_TOKEN": ("404", "NotFound"),
    "AUTHORIZER_FAILURE": ("503", "ServiceUnavailable"),
    "AUTHORIZER_CONFIGURATION_ERROR": ("503", "ServiceUnavailable"),
    "UNSUPPORTED_MEDIA_TYPE": ("415", "UnsupportedMediaType"),
    "REQUEST_TOO_LARGE": ("413", "PayloadTooLarge"),
    "INTEGRATION_TIMEOUT": ("504", "GatewayTimeout"),
    "THROTTLED": ("429", "TooManyRequests"),
}


def _render(template_text: str) -> dict[str, Any]:
    """What API Gateway sends: `$context.error.messageString` is its message, already JSON-quoted."""
    return cast(
        "dict[str, Any]",
        json.loads(template_text.replace("$context.error.messageString", json.dumps('Say "hi" \\ ok'))),
    )


def test_gateway_responses_answer_in_the_one_error_shape(template: dict[str, Any]) -> None:
    from chalicelib.platform.errors import RETRY_AFTER_SECONDS

    body = template["Resources"]["RestAPI"]["Properties"]["DefinitionBody"]
    responses = body["x-amazon-apigateway-gateway-responses"]
    assert set(responses) == set(EXPECTED_GATEWAY_RESPONSES)
    for kind, (status, code) in EXPECTED_GATEWAY_RESPONSES.items():
        response = responses[kind]
        assert response.get("statusCode") == status, kind
        rendered = _render(response["responseTemplates"]["application/json"])
        assert set(rendered) == {"error", "message", "fields"} and rendered["fields"] == [], kind
        assert rendered["error"] == code and rendered["message"], kind
        headers = response["responseParameters"]
        if status in ("503", "429"):
            assert headers["gatewayresponse.header.Retry-After"] == f"'{RETRY_AFTER_SECONDS}'", kind
    assert responses["UNAUTHORIZED"]["responseParameters"]["gatewayresponse.header.WWW-Authenticate"] == "'Bearer'"


def test_chalice_deploy_gets_the_same_gateway_responses(aws: Any) -> None:
    """`chalice deploy` cannot carry them in its swagger: devtools.deploy puts them afterwards."""
    from infra.gateway_responses import apply_gateway_responses, gateway_responses

    gateway = aws("apigateway")
    api_id = gateway.create_rest_api(name=f"gateway-responses-{os.getpid()}")["id"]
    root = gateway.get_resources(restApiId=api_id)["items"][0]["id"]
    gateway.put_method(restApiId=api_id, resourceId=root, httpMethod="GET", authorizationType="NONE")
    gateway.put_integration(restApiId=api_id, resourceId=root, httpMethod="GET", type="MOCK")
    try:
        applied = apply_gateway_responses([{"resource_type": "rest_api", "rest_api_id": api_id}], "dev")
        assert set(applied) == set(EXPECTED_GATEWAY_RESPONSES)
        put = {r["responseType"]: r for r in gateway.get_gateway_responses(restApiId=api_id)["items"]}
        for kind, expected in gateway_responses().items():
            assert put[kind].get("statusCode") == expected.get("statusCode"), kind
            assert put[kind]["responseTemplates"] == expected["responseTemplates"], kind
        assert [s["stageName"] for s in gateway.get_stages(restApiId=api_id)["item"]] == ["api"]
    finally:
        gateway.delete_rest_api(restApiId=api_id)


def test_bucket_sends_upload_events_to_the_media_queue_without_a_dependency_cycle(template: dict[str, Any]) -> None:
    resources = template["Resources"]
    bucket = resources["MediaBucket"]
    (notification,) = bucket["Properties"]["NotificationConfiguration"]["QueueConfigurations"]
    assert notification["Queue"] == {"Fn::GetAtt": ["MediaQueue", "Arn"]}
    assert notification["Event"] == "s3:ObjectCreated:*"
    assert notification["Filter"]["S3Key"]["Rules"] == [{"Name": "prefix", "Value": "uploads/"}]
    # S3 checks the queue policy when the notification is created: policy first, and the policy
    # names the bucket by a string ARN, so bucket → policy → queue has no cycle.
    assert bucket["DependsOn"] == ["MediaUploadEventsQueuePolicy"]
    policy = resources["MediaUploadEventsQueuePolicy"]["Properties"]
    assert "MediaBucket" not in json.dumps(policy)
    (statement,) = policy["PolicyDocument"]["Statement"]
    assert statement["Principal"] == {"Service": "s3.amazonaws.com"} and statement["Action"] == "sqs:SendMessage"
    assert statement["Condition"]["ArnEquals"]["aws:SourceArn"] == {
        "Fn::Sub": "arn:${AWS::Partition}:s3:::bookshelf-dev-media"
    }
    assert statement["Condition"]["StringEquals"]["aws:SourceAccount"] == {"Ref": "AWS::AccountId"}
    (rule,) = bucket["Properties"]["LifecycleConfiguration"]["Rules"]
    assert rule["Prefix"] == "uploads/" and rule["ExpirationInDays"] == 1
    assert bucket["Properties"]["CorsConfiguration"]["CorsRules"][0]["AllowedMethods"] == ["POST"]


def test_upload_permissions_are_scoped_to_the_uploads_prefix() -> None:
    def statements(name: str) -> list[dict[str, Any]]:
        return cast("list[dict[str, Any]]", json.loads((ROOT / ".chalice" / name).read_text())["Statement"])

    uploads = "arn:aws:s3:::bookshelf-*-media/uploads/*"
    api = [s for s in statements("policy-api.json") if uploads in s["Resource"]]
    assert [(s["Action"], s["Resource"]) for s in api] == [(["s3:PutObject"], [uploads])]  # signs the POST policy
    worker = [s for s in statements("policy-media-worker.json") if uploads in s["Resource"]]
    assert [(s["Action"], s["Resource"]) for s in worker] == [(["s3:GetObject", "s3:DeleteObject"], [uploads])]


def test_periodic_tasks_are_eventbridge_schedules_on_both_deploy_paths(
    template: dict[str, Any], app_module: Any
) -> None:
    from chalice.app import ScheduledEventConfig

    from chalicelib.tasks.periodic import registered_periodic

    periodic = {name: p.expression() for name, p in registered_periodic().items() if not name.startswith("tests_")}
    assert periodic["outbox_relay"] == "rate(1 minute)" and periodic["dead_letter_reconciler"] == "rate(5 minutes)"
    # `chalice deploy` builds its EventBridge rules from the app's event sources; Lambda then
    # imports the handler string, which must name an attribute of the app module.
    scheduled = {s.name: s for s in app_module.app.event_sources if isinstance(s, ScheduledEventConfig)}
    for name, expression in periodic.items():
        assert scheduled[name].schedule_expression == expression
        module, handler = scheduled[name].handler_string.split(".")
        assert module == "app" and callable(getattr(app_module, handler))
        # `make package`: a Schedule event on the function, with the name `chalice deploy` gives it.
        function = template["Resources"]["".join(part.capitalize() for part in name.split("_"))]
        events = list(function["Properties"]["Events"].values())
        assert events == [{"Type": "Schedule", "Properties": {"Schedule": expression}}]
        assert function["Properties"]["FunctionName"] == f"bookshelf-dev-{name}"


def test_snapstart_is_off_by_default(template: dict[str, Any]) -> None:
    functions = _of_type(template, "AWS::Serverless::Function")
    assert not [name for name, f in functions.items() if "SnapStart" in f["Properties"]]
    assert not [name for name, f in functions.items() if "AutoPublishAlias" in f["Properties"]]


def test_snapstart_setting_snapshots_published_versions_and_every_caller_uses_the_alias(
    tmp_path_factory: pytest.TempPathFactory, template: dict[str, Any]
) -> None:
    """SNAPSTART=true: SnapStart only applies to published versions, so each function
    publishes one behind an alias, and API Gateway, its authorizer, the SQS mappings and
    the schedules all invoke that alias (an invocation of $LATEST never restores a snapshot)."""
    snap_dir = _package(tmp_path_factory, SNAPSTART="true")
    lint = subprocess.run(
        [str(Path(sys.executable).parent / "cfn-lint"), str(snap_dir / "sam.json")], capture_output=True, text=True
    )
    assert lint.returncode == 0, lint.stdout + lint.stderr
    snap = json.loads((snap_dir / "sam.json").read_text())
    functions = _of_type(snap, "AWS::Serverless::Function")
    assert set(functions) == set(_of_type(template, "AWS::Serverless::Function"))
    for name, function in functions.items():
        assert function["Properties"]["SnapStart"] == {"ApplyOn": "PublishedVersions"}, name
        assert function["Properties"]["AutoPublishAlias"] == "live", name
    body = snap["Resources"]["RestAPI"]["Properties"]["DefinitionBody"]
    uris = [
        operation["x-amazon-apigateway-integration"]["uri"]["Fn::Sub"]
        for path in body["paths"].values()
        for operation in path.values()
        if "uri" in operation.get("x-amazon-apigateway-integration", {})
    ]
    # SAM names the alias it publishes `<Function>Alias<name>`.
    assert uris and all("${APIHandlerAliaslive}" in uri for uri in uris), uris
    authorizer = body["securityDefinitions"]["api_key_auth"]["x-amazon-apigateway-authorizer"]
    assert "${ApiKeyAuthAliaslive}" in authorizer["authorizerUri"]["Fn::Sub"]
    permissions = {"APIHandlerAliasliveInvokePermission", "ApiKeyAuthAliasliveInvokePermission"}
    for name in permissions:
        alias = name.removesuffix("InvokePermission")
        assert snap["Resources"][name]["Properties"]["FunctionName"] == {"Ref": alias}
    # Nothing else changes: the default template's resources and the aliases' permissions.
    assert set(snap["Resources"]) == set(template["Resources"]) | permissions
