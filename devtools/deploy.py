"""`chalice deploy` with everything around it: resources first, then the functions.

`chalice deploy` creates functions, roles, the REST API and the event source mappings,
not tables, queues or alarms. This creates the stage's resources idempotently
(infra/local.py, the API executor of the one model in infra/model.py: tables, bucket,
queues, dashboard and alarms), then runs `chalice deploy`, and gives the workers' event
source mappings the FunctionResponseTypes the workers expect (chalice cannot set them:
aws/chalice#2029), reading them back.
Works against AWS, LocalStack or the embedded emulator:

  python -m devtools.deploy --stage dev
  python -m devtools.deploy --stage local --endpoint http://localhost:4566
  python -m devtools.deploy --stage dev --check           # only verify the mappings

The one-stack alternative is `make package` + `python -m devtools.stack --s3-bucket ...` (docs/DEPLOY.md).
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from pathlib import Path
from typing import Any

from devtools import lambda_build
from devtools.stage import ROOT
from infra.functions import WORKERS, check_time_limits, function_name, function_settings, response_types, use_stage
from infra.gateway_responses import apply_gateway_responses


class DeployError(RuntimeError):
    """The deployed stage is not in the state the code needs; says what to fix."""


def deploy(stage: str, project: Path = ROOT, endpoint: str | None = None) -> dict[str, Any]:
    """Deploy `project` as `stage`; returns chalice's record of what it deployed."""
    if endpoint:
        os.environ["AWS_ENDPOINT_URL"] = endpoint
    use_stage(stage)
    from chalicelib.platform.config import get_settings
    from infra.local import apply_monitoring, create_all

    wanted = response_types(get_settings())
    check_time_limits(function_settings(stage))  # before anything is created
    create_all()
    monitoring = apply_monitoring()
    if wanted:
        # Existing mappings get the response type before the new code, which relies on it, is
        # deployed: the old code (delete handled, raise) is safe with it, the reverse is not.
        set_response_types(wanted)
    lambda_build.chalice(["deploy", "--stage", stage], project=project)  # under the runtime's Python
    mappings = set_response_types(wanted)
    verify_response_types(wanted)
    deployed = json.loads((project / ".chalice" / "deployed" / f"{stage}.json").read_text())
    apply_gateway_responses(deployed["resources"], stage)  # API Gateway's own errors in the app's error shape
    return {"monitoring": monitoring, "resources": deployed["resources"], "mappings": mappings}


def worker_mappings() -> dict[str, list[dict[str, Any]]]:
    """The event source mappings from each work queue to its worker, by function name (paged).

    Listed by queue ARN, which every implementation filters alike (moto matches
    FunctionName only as it was given at creation, name or ARN).
    """
    from chalicelib.platform.aws import client
    from chalicelib.platform.config import get_settings
    from chalicelib.platform.sqs import queue_arn

    settings, lam = get_settings(), client("lambda")
    found: dict[str, list[dict[str, Any]]] = {}
    for key, worker in WORKERS.items():
        name = function_name(settings, worker)
        pages = lam.get_paginator("list_event_source_mappings").paginate(
            EventSourceArn=queue_arn(settings.queues[key].name)
        )
        found[name] = [
            m for page in pages for m in page["EventSourceMappings"] if _function_of(m["FunctionArn"]) == name
        ]
    return found


def _function_of(arn: str) -> str:
    """The function name in a (possibly qualified) function ARN."""
    return arn.split(":function:", 1)[-1].split(":", 1)[0]


def set_response_types(wanted: list[str], timeout: float = 120.0) -> list[dict[str, Any]]:
    """Give every worker mapping exactly `wanted` as FunctionResponseTypes (idempotent).

    A mapping that is still being created or updated refuses changes (ResourceInUseException):
    wait and try again, up to `timeout` seconds.
    """
    from botocore.exceptions import ClientError

    from chalicelib.platform.aws import client

    lam, changed = client("lambda"), []
    for name, mappings in worker_mappings().items():
        for mapping in mappings:
            if sorted(mapping.get("FunctionResponseTypes") or []) == sorted(wanted):
                continue
            deadline = time.monotonic() + timeout
            while True:
                try:
                    lam.update_event_source_mapping(UUID=mapping["UUID"], FunctionResponseTypes=wanted)
                    break
                except ClientError as exc:
                    if exc.response["Error"]["Code"] != "ResourceInUseException" or time.monotonic() > deadline:
                        raise
                    time.sleep(2)
            changed.append({"function": name, "uuid": mapping["UUID"], "function_response_types": wanted})
    return changed


def verify_response_types(wanted: list[str]) -> None:
    """Read the mappings back: one per worker, each with `wanted`, or fail loudly.

    A worker that returns batchItemFailures to a mapping without ReportBatchItemFailures has
    its whole batch deleted, failed messages included; this refuses to leave a stage so.
    """
    from chalicelib.platform.aws import client

    lam, problems = client("lambda"), []
    for name, mappings in worker_mappings().items():
        if len(mappings) != 1:
            problems.append(f"{name} has {len(mappings)} event source mappings, expected 1")
        for mapping in mappings:
            actual = lam.get_event_source_mapping(UUID=mapping["UUID"]).get("FunctionResponseTypes") or []
            if sorted(actual) != sorted(wanted):
                problems.append(f"{name} mapping {mapping['UUID']} has response types {actual}, expected {wanted}")
    if problems:
        raise DeployError(
            "event source mappings do not match REPORT_BATCH_ITEM_FAILURES: "
            + "; ".join(problems)
            + ". Run the deploy again, or fix the mapping by hand before messages arrive."
        )


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m devtools.deploy", description=__doc__.splitlines()[0])
    parser.add_argument("--stage", default=os.environ.get("STAGE", "dev"))
    parser.add_argument("--endpoint", default=os.environ.get("AWS_ENDPOINT_URL"), help="LocalStack or emulator URL")
    parser.add_argument("--project", type=Path, default=ROOT, help="the Chalice project to deploy")
    mode = parser.add_mutually_exclusive_group()
    mode.add_argument("--check", action="store_true", help="only verify the event source mappings' response types")
    mode.add_argument("--mappings-only", action="store_true", help="only set and verify the response types")
    args = parser.parse_args(argv)
    try:
        if args.check or args.mappings_only:
            _mappings(args.stage, args.endpoint, change=args.mappings_only)
            return
        result = deploy(args.stage, args.project.resolve(), args.endpoint)
    except DeployError as exc:
        sys.exit(f"deploy: {exc}")
    for resource in result["resources"]:
        print(f"{resource['resource_type']:>22}  {resource['name']}")
    print(f"dashboard {result['monitoring']['dashboard']}; alarms: {', '.join(result['monitoring']['alarms'])}")
    _report(result["mappings"])
    print("event source mappings verified: FunctionResponseTypes match REPORT_BATCH_ITEM_FAILURES")


def _mappings(stage: str, endpoint: str | None, change: bool) -> None:
    """`--check` / `--mappings-only`: the deployed stage's mappings, without deploying code."""
    if endpoint:
        os.environ["AWS_ENDPOINT_URL"] = endpoint
    use_stage(stage)
    from chalicelib.platform.config import get_settings

    wanted = response_types(get_settings())
    _report(set_response_types(wanted) if change else [])
    verify_response_types(wanted)
    print("event source mappings verified: FunctionResponseTypes match REPORT_BATCH_ITEM_FAILURES")


def _report(changes: list[dict[str, Any]]) -> None:
    for change in changes:
        print(f"event source mapping of {change['function']} set to {change['function_response_types']}")


if __name__ == "__main__":
    main()
