"""`chalice deploy` for real, against an emulator of its own: functions, roles, REST API,
event source mappings with their batch sizes and concurrency, schedule, dashboard, alarms.

A separate emulator process, because moto would try to run the deployed functions (in
Docker) as soon as a message reached a queue with an event source mapping.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import tempfile
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import boto3
import pytest

ROOT = Path(__file__).resolve().parent.parent
STAGE = "dev"


@pytest.fixture(scope="module")
def deployment(tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, Any]]:
    from conftest import TEST_ENV

    from devtools.emulator import start_process

    project = tmp_path_factory.mktemp("project")
    shutil.copy(ROOT / "app.py", project)
    shutil.copy(ROOT / "requirements.txt", project)
    shutil.copytree(ROOT / "chalicelib", project / "chalicelib", ignore=shutil.ignore_patterns("__pycache__"))
    (project / ".chalice").mkdir()
    for config in (ROOT / ".chalice").glob("*.json"):
        shutil.copy(config, project / ".chalice")
    # Share chalice's package cache (Lambda wheels) with the working tree.
    (ROOT / ".chalice" / "deployments").mkdir(exist_ok=True)
    (project / ".chalice" / "deployments").symlink_to(ROOT / ".chalice" / "deployments")

    log = tempfile.NamedTemporaryFile(prefix="deploy-emulator-", suffix=".log", delete=False)
    proc, endpoint = start_process(log=log)
    prefix = f"bookshelf-deploy-{uuid.uuid4().hex[:8]}"
    env = {k: v for k, v in os.environ.items() if k not in TEST_ENV and k not in ("STAGE", "AWS_ENDPOINT_URL")}
    env.update(
        AWS_ACCESS_KEY_ID="test",
        AWS_SECRET_ACCESS_KEY="test",
        AWS_DEFAULT_REGION="us-east-1",
        RESOURCE_PREFIX=prefix,
    )
    try:
        run = subprocess.run(
            [sys.executable, "-m", "devtools.deploy", "--stage", STAGE, "--endpoint", endpoint, "--project", project],
            cwd=ROOT,
            env=env,
            capture_output=True,
            text=True,
        )
        assert run.returncode == 0, run.stdout[-3000:] + run.stderr[-3000:]
        deployed = json.loads((project / ".chalice" / "deployed" / f"{STAGE}.json").read_text())
        yield {"endpoint": endpoint, "prefix": prefix, "deployed": deployed, "output": run.stdout}
    finally:
        proc.terminate()
        proc.wait(timeout=10)


@pytest.fixture(scope="module")
def remote(deployment: dict[str, Any]) -> Callable[[str], Any]:
    def make(service: str) -> Any:
        return boto3.client(
            service,
            endpoint_url=deployment["endpoint"],
            region_name="us-east-1",
            aws_access_key_id="test",
            aws_secret_access_key="test",
        )

    return make


@pytest.fixture(scope="module")
def stage_functions() -> dict[str, Any]:
    return json.loads((ROOT / ".chalice" / "config.json").read_text())["stages"][STAGE]["lambda_functions"]


def _function_name(name: str) -> str:
    return f"bookshelf-{STAGE}" if name == "api_handler" else f"bookshelf-{STAGE}-{name}"


def test_every_function_is_deployed_with_its_settings(remote, stage_functions) -> None:
    deployed = {f["FunctionName"]: f for f in remote("lambda").list_functions()["Functions"]}
    for name, config in stage_functions.items():
        function = deployed[_function_name(name)]
        assert function["Timeout"] == config["lambda_timeout"]
        assert function["MemorySize"] == config["lambda_memory_size"]
        assert function["Runtime"].startswith("python3")


def test_each_role_carries_its_policy_file(remote, stage_functions) -> None:
    iam = remote("iam")
    for name, config in stage_functions.items():
        role = f"bookshelf-{STAGE}-{name}"  # chalice names each role after its function
        (policy_name,) = iam.list_role_policies(RoleName=role)["PolicyNames"]
        document = iam.get_role_policy(RoleName=role, PolicyName=policy_name)["PolicyDocument"]
        if isinstance(document, str):
            document = json.loads(document)
        assert document == json.loads((ROOT / ".chalice" / config["iam_policy_file"]).read_text())


def test_event_source_mappings_have_batch_size_and_maximum_concurrency(remote, deployment) -> None:
    prefix = deployment["prefix"]
    expected = {"media_worker": (f"{prefix}-media", 1, 2), "default_worker": (f"{prefix}-default", 10, 10)}
    mappings = remote("lambda").list_event_source_mappings()["EventSourceMappings"]
    for name, (queue, batch, concurrency) in expected.items():
        (mapping,) = [m for m in mappings if m["FunctionArn"].endswith(f":function:{_function_name(name)}")]
        assert mapping["EventSourceArn"].endswith(f":{queue}")
        assert mapping["BatchSize"] == batch
        assert mapping["ScalingConfig"] == {"MaximumConcurrency": concurrency}


def test_rest_api_has_every_route(remote) -> None:
    gateway = remote("apigateway")
    (api,) = [a for a in gateway.get_rest_apis()["items"] if a["name"] == "bookshelf"]
    resources = {
        r["path"]: set(r.get("resourceMethods", {})) for r in gateway.get_resources(restApiId=api["id"])["items"]
    }
    assert {"GET", "POST"} <= resources["/books"]
    assert {"GET", "PUT", "DELETE"} <= resources["/books/{book_id}"]
    assert "PUT" in resources["/books/{book_id}/cover"]
    assert {"GET", "POST"} <= resources["/authors/{name}/subscribers"]
    assert "GET" in resources["/tasks/{task_id}"] and "GET" in resources["/queues"]
    assert "POST" in resources["/queues/{name}/redrive"]


def test_reconciler_is_scheduled(remote) -> None:
    events = remote("events")
    rules = {r["Name"]: r for r in events.list_rules()["Rules"]}
    (rule,) = [r for name, r in rules.items() if "dead_letter_reconciler" in name]
    assert rule["ScheduleExpression"] == "rate(5 minutes)"
    (target,) = events.list_targets_by_rule(Rule=rule["Name"])["Targets"]
    assert target["Arn"].endswith(f":function:{_function_name('dead_letter_reconciler')}")


def test_dashboard_and_alarms_are_deployed(remote, deployment) -> None:
    prefix = deployment["prefix"]
    body = json.loads(remote("cloudwatch").get_dashboard(DashboardName=f"bookshelf-{STAGE}")["DashboardBody"])
    assert len(body["widgets"]) >= 10
    alarms = {a["AlarmName"]: a for a in remote("cloudwatch").describe_alarms()["MetricAlarms"]}
    for key in ("media", "default"):
        assert alarms[f"{prefix}-{key}-dlq-not-empty"]["Threshold"] == 0
        assert alarms[f"{prefix}-{key}-oldest-message-age"]["MetricName"] == "ApproximateAgeOfOldestMessage"


def test_gateway_responses_are_put_after_chalice_deploy(remote) -> None:
    """API Gateway's own errors (no route, no key, authorizer down, …) answer in the app's error shape."""
    from devtools.infra import gateway_responses

    gateway = remote("apigateway")
    (api,) = [a for a in gateway.get_rest_apis()["items"] if a["name"] == "bookshelf"]
    put = {r["responseType"]: r for r in gateway.get_gateway_responses(restApiId=api["id"])["items"]}
    for kind, expected in gateway_responses().items():
        assert put[kind]["responseTemplates"] == expected["responseTemplates"], kind
        assert put[kind].get("statusCode") == expected.get("statusCode"), kind
    assert put["AUTHORIZER_FAILURE"]["statusCode"] == "503"
    assert put["MISSING_AUTHENTICATION_TOKEN"]["statusCode"] == "404"
