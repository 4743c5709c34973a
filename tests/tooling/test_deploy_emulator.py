"""`chalice deploy` for real (`make deploy`'s code path): functions, roles, REST API, event
source mappings with their batch sizes, concurrency and response types, schedule, dashboard, alarms.

Where it deploys:
- `make test` (the embedded emulator): a fresh emulator of its own, because moto would try to
  run the deployed functions (in Docker) as soon as a message reached a queue with a mapping.
- An endpoint that serves every service a deploy needs (e.g. the container of
  localstack-compose.yml): that endpoint, with the per-service endpoints the suite was given.
- `make test-localstack` (host-mode LocalStack: its Lambda functions never become Active
  without Docker, and moto's mappings only accept moto's own queues, so Lambda cannot be
  split off alone): the embedded emulator that run was given (DynamoDB's and SES's), for
  every service of the deploy. Otherwise the module skips and says why.
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
from typing import Any, cast

import boto3
import pytest

from infra import lambda_build, pythons

# One xdist worker takes the whole file (--dist loadgroup):
# its module fixture deploys the stage once.
pytestmark = pytest.mark.xdist_group("deploy_emulator")


ROOT = Path(__file__).resolve().parents[2]
STAGE = "dev"


def _missing_services() -> list[str]:
    """The services chalice deploy needs that the given endpoints do not serve."""
    from botocore.exceptions import BotoCoreError, ClientError

    from chalicelib.platform.aws import client

    probes: dict[str, Callable[[Any], Any]] = {
        "lambda": lambda c: c.list_functions(MaxItems=1),
        "iam": lambda c: c.list_roles(MaxItems=1),
        "apigateway": lambda c: c.get_rest_apis(limit=1),
        "events": lambda c: c.list_rules(Limit=1),
        "cloudwatch": lambda c: c.list_dashboards(),
        "sns": lambda c: c.list_topics(),
    }
    missing = []
    for service, probe in probes.items():
        try:
            probe(client(service))
        except (ClientError, BotoCoreError):
            missing.append(service)
    return missing


def _given_emulator() -> str | None:
    """An embedded emulator among the per-service endpoints the suite was given, if any."""
    from helpers import is_emulator as _is_emulator

    given = {v for k, v in os.environ.items() if k.startswith("AWS_ENDPOINT_URL_")}
    return next((url for url in sorted(given) if _is_emulator(url)), None)


def _copy_project(project: Path) -> None:
    shutil.copy(ROOT / "app.py", project)
    shutil.copy(ROOT / "requirements.txt", project)
    shutil.copytree(ROOT / "chalicelib", project / "chalicelib", ignore=shutil.ignore_patterns("__pycache__"))
    (project / ".chalice").mkdir()
    for config in (ROOT / ".chalice").glob("*.json"):
        shutil.copy(config, project / ".chalice")
    # Share chalice's package cache (Lambda wheels) with the working tree.
    (ROOT / ".chalice" / "deployments").mkdir(exist_ok=True)
    (project / ".chalice" / "deployments").symlink_to(ROOT / ".chalice" / "deployments")


def _deploy_env(prefix: str, endpoints: dict[str, str]) -> dict[str, str]:
    from session_env import TEST_ENV

    env = {
        k: v
        for k, v in os.environ.items()
        if k not in TEST_ENV and k != "STAGE" and not k.startswith("AWS_ENDPOINT_URL")
    }
    env.update(
        AWS_ACCESS_KEY_ID="test",
        AWS_SECRET_ACCESS_KEY="test",
        AWS_DEFAULT_REGION="us-east-1",
        RESOURCE_PREFIX=prefix,
        **endpoints,
    )
    return env


def _deploy(project: Path, env: dict[str, str], *extra: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "devtools.deploy", "--stage", STAGE, "--project", str(project), *extra],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
    )


@pytest.fixture(scope="module")
def deployment(tmp_path_factory: pytest.TempPathFactory, endpoint: str) -> Iterator[dict[str, Any]]:
    from helpers import is_emulator as _is_emulator

    from devtools.emulator.process import start_process

    proc, log = None, None
    if _is_emulator(endpoint):
        log = tempfile.NamedTemporaryFile(prefix="deploy-emulator-", suffix=".log", delete=False)
        proc, fresh = start_process(log=log)
        endpoints, endpoint_url = {"AWS_ENDPOINT_URL": fresh}, fresh
    elif not (missing := _missing_services()):
        endpoints = {k: v for k, v in os.environ.items() if k.startswith("AWS_ENDPOINT_URL")}
        endpoint_url = None  # botocore reads the per-service variables
    elif emulator := _given_emulator():
        endpoints, endpoint_url = {"AWS_ENDPOINT_URL": emulator}, emulator
    else:
        pytest.skip(
            f"the endpoint {endpoint} does not serve {', '.join(missing)}, which chalice deploy needs, "
            "and no embedded emulator was given beside it"
        )
    try:
        lambda_build.runtime_python()  # chalice runs under the runtime's Python 3.13
    except pythons.PythonNotFound as missing:
        pytest.skip(str(missing))
    project = tmp_path_factory.mktemp("project")
    _copy_project(project)
    prefix = f"bookshelf-deploy-{uuid.uuid4().hex[:8]}"
    env = _deploy_env(prefix, endpoints)
    try:
        run = _deploy(project, env)
        assert run.returncode == 0, run.stdout[-3000:] + run.stderr[-3000:]
        deployed = json.loads((project / ".chalice" / "deployed" / f"{STAGE}.json").read_text())
        yield {
            "endpoint_url": endpoint_url,
            "prefix": prefix,
            "deployed": deployed,
            "output": run.stdout,
            "env": env,
            "project": project,
        }
    finally:
        if proc is not None:
            proc.terminate()
            proc.wait(timeout=10)
        if log is not None:
            log.close()


@pytest.fixture(scope="module")
def remote(deployment: dict[str, Any]) -> Callable[[str], Any]:
    def make(service: str) -> Any:
        return boto3.client(
            service,
            endpoint_url=deployment["endpoint_url"],
            region_name="us-east-1",
            aws_access_key_id="test",
            aws_secret_access_key="test",
        )

    return make


@pytest.fixture(scope="module")
def stage_functions() -> dict[str, Any]:
    return cast(
        "dict[str, Any]",
        json.loads((ROOT / ".chalice" / "config.json").read_text())["stages"][STAGE]["lambda_functions"],
    )


def _function_name(name: str) -> str:
    return f"bookshelf-{STAGE}" if name == "api_handler" else f"bookshelf-{STAGE}-{name}"


def test_every_function_is_deployed_with_its_settings(remote: Any, stage_functions: Any) -> None:
    deployed = {f["FunctionName"]: f for f in remote("lambda").list_functions()["Functions"]}
    for name, config in stage_functions.items():
        function = deployed[_function_name(name)]
        assert function["Timeout"] == config["lambda_timeout"]
        assert function["MemorySize"] == config["lambda_memory_size"]
        # The runtime the zip was built for (infra/lambda_build.py): chalice takes it from its Python.
        assert function["Runtime"] == "python3.13"
        assert function.get("Architectures", ["x86_64"]) == ["x86_64"]


def test_each_role_carries_its_policy_file(remote: Any, stage_functions: Any) -> None:
    iam = remote("iam")
    for name, config in stage_functions.items():
        role = f"bookshelf-{STAGE}-{name}"  # chalice names each role after its function
        (policy_name,) = iam.list_role_policies(RoleName=role)["PolicyNames"]
        document = iam.get_role_policy(RoleName=role, PolicyName=policy_name)["PolicyDocument"]
        if isinstance(document, str):
            document = json.loads(document)
        assert document == json.loads((ROOT / ".chalice" / config["iam_policy_file"]).read_text())


def test_event_source_mappings_have_batch_size_and_maximum_concurrency(remote: Any, deployment: Any) -> None:
    prefix = deployment["prefix"]
    expected = {"media_worker": (f"{prefix}-media", 1, 2), "default_worker": (f"{prefix}-default", 10, 10)}
    mappings = remote("lambda").list_event_source_mappings()["EventSourceMappings"]
    for name, (queue, batch, concurrency) in expected.items():
        (mapping,) = [m for m in mappings if m["FunctionArn"].endswith(f":function:{_function_name(name)}")]
        assert mapping["EventSourceArn"].endswith(f":{queue}")
        assert mapping["BatchSize"] == batch
        assert mapping["ScalingConfig"] == {"MaximumConcurrency": concurrency}


def test_rest_api_has_every_route(remote: Any) -> None:
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


def test_reconciler_is_scheduled(remote: Any) -> None:
    events = remote("events")
    rules = {r["Name"]: r for r in events.list_rules()["Rules"]}
    (rule,) = [r for name, r in rules.items() if "dead_letter_reconciler" in name]
    assert rule["ScheduleExpression"] == "rate(5 minutes)"
    (target,) = events.list_targets_by_rule(Rule=rule["Name"])["Targets"]
    assert target["Arn"].endswith(f":function:{_function_name('dead_letter_reconciler')}")


def test_dashboard_and_alarms_are_deployed(remote: Any, deployment: Any) -> None:
    prefix = deployment["prefix"]
    body = json.loads(remote("cloudwatch").get_dashboard(DashboardName=f"bookshelf-{STAGE}")["DashboardBody"])
    assert len(body["widgets"]) >= 10
    alarms = {a["AlarmName"]: a for a in remote("cloudwatch").describe_alarms()["MetricAlarms"]}
    for key in ("media", "default"):
        assert alarms[f"{prefix}-{key}-dlq-not-empty"]["Threshold"] == 0
        assert alarms[f"{prefix}-{key}-oldest-message-age"]["MetricName"] == "ApproximateAgeOfOldestMessage"


def _worker_mappings(remote: Callable[[str], Any]) -> dict[str, dict[str, Any]]:
    mappings = remote("lambda").list_event_source_mappings()["EventSourceMappings"]
    found = {}
    for name in ("media_worker", "default_worker"):
        (mapping,) = [m for m in mappings if m["FunctionArn"].endswith(f":function:{_function_name(name)}")]
        found[name] = mapping
    return found


def test_event_source_mappings_report_batch_item_failures(remote: Any, deployment: Any) -> None:
    """make deploy sets the response type chalice cannot, and tells the functions the same."""
    lam = remote("lambda")
    for name, mapping in _worker_mappings(remote).items():
        read_back = lam.get_event_source_mapping(UUID=mapping["UUID"])
        assert read_back["FunctionResponseTypes"] == ["ReportBatchItemFailures"]
        variables = lam.get_function_configuration(FunctionName=_function_name(name))["Environment"]["Variables"]
        assert variables["REPORT_BATCH_ITEM_FAILURES"] == "true"
    assert "event source mappings verified" in deployment["output"]


def test_deploy_check_refuses_a_mapping_without_the_response_type_and_repairs_it(remote: Any, deployment: Any) -> None:
    lam, project, env = remote("lambda"), deployment["project"], deployment["env"]
    media = _worker_mappings(remote)["media_worker"]
    lam.update_event_source_mapping(UUID=media["UUID"], FunctionResponseTypes=[])
    try:
        check = _deploy(project, env, "--check")
        assert check.returncode != 0
        assert "do not match REPORT_BATCH_ITEM_FAILURES" in check.stderr and media["UUID"] in check.stderr

        repair = _deploy(project, env, "--mappings-only")
        assert repair.returncode == 0, repair.stderr[-3000:]
        assert f"{_function_name('media_worker')} set to ['ReportBatchItemFailures']" in repair.stdout
        again = _deploy(project, env, "--mappings-only")  # idempotent: nothing left to change
        assert again.returncode == 0 and "set to" not in again.stdout
        assert _deploy(project, env, "--check").returncode == 0
    finally:
        lam.update_event_source_mapping(UUID=media["UUID"], FunctionResponseTypes=["ReportBatchItemFailures"])
    assert lam.get_event_source_mapping(UUID=media["UUID"])["FunctionResponseTypes"] == ["ReportBatchItemFailures"]


def test_gateway_responses_are_put_after_chalice_deploy(remote: Any) -> None:
    """API Gateway's own errors (no route, no key, authorizer down, …) answer in the app's error shape."""
    from infra.gateway_responses import gateway_responses

    gateway = remote("apigateway")
    (api,) = [a for a in gateway.get_rest_apis()["items"] if a["name"] == "bookshelf"]
    put = {r["responseType"]: r for r in gateway.get_gateway_responses(restApiId=api["id"])["items"]}
    for kind, expected in gateway_responses().items():
        assert put[kind]["responseTemplates"] == expected["responseTemplates"], kind
        assert put[kind].get("statusCode") == expected.get("statusCode"), kind
    assert put["AUTHORIZER_FAILURE"]["statusCode"] == "503"
    assert put["MISSING_AUTHENTICATION_TOKEN"]["statusCode"] == "404"
