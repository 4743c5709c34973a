"""Deploy `make package`'s one stack through an S3 bucket: `aws cloudformation package` + `deploy`.

The packaged template is over CloudFormation's 51,200-byte `TemplateBody` limit, so it goes to
CloudFormation as a `TemplateURL`, as `aws cloudformation deploy --s3-bucket` sends it. This does
the same with boto3 (the project's own client; the aws CLI is not a dependency): uploads
`deployment.zip` and points every function's `CodeUri` at it, uploads the template, then creates
and executes a change set and waits for the stack. Works against AWS and MiniStack alike:

  make package STAGE=dev
  python -m devtools.stack --stage dev --s3-bucket <artifact-bucket> --parameter-overrides AlarmEmail=ops@example.com
  AWS_ENDPOINT_URL=http://127.0.0.1:4710 python -m devtools.stack --stage dev --s3-bucket artifacts
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import sys
import time
from pathlib import Path
from typing import Any

from infra.stage import ROOT

CAPABILITIES = ["CAPABILITY_IAM", "CAPABILITY_AUTO_EXPAND"]


class StackError(RuntimeError):
    """The stack did not reach a complete state; the message has CloudFormation's reasons."""


def _client(service: str, region: str) -> Any:
    import boto3

    return boto3.client(service, region_name=region)  # AWS_ENDPOINT_URL is honoured by botocore


def upload(s3: Any, bucket: str, prefix: str, path: Path) -> str:
    """Put `path` under its content hash (an unchanged artefact is not uploaded again); its key."""
    data = path.read_bytes()
    key = f"{prefix}/{hashlib.sha256(data).hexdigest()}{''.join(path.suffixes)}"
    s3.put_object(Bucket=bucket, Key=key, Body=data)
    return key


def packaged(template: dict[str, Any], bucket: str, code_key: str) -> dict[str, Any]:
    """The template with every local `CodeUri` pointing at the uploaded zip."""
    out: dict[str, Any] = json.loads(json.dumps(template))
    for resource in out["Resources"].values():
        props = resource.get("Properties", {})
        if resource["Type"] == "AWS::Serverless::Function" and not str(props.get("CodeUri", "")).startswith("s3://"):
            props["CodeUri"] = f"s3://{bucket}/{code_key}"
    return out


def deploy(
    stage: str,
    bucket: str,
    stack: str | None = None,
    parameters: dict[str, str] | None = None,
    package_dir: Path | None = None,
    timeout: float = 900.0,
) -> dict[str, Any]:
    """Deploy build/package-<stage> as `stack` (bookshelf-<stage>); returns the stack's description."""
    directory = package_dir or ROOT / "build" / f"package-{stage}"
    stack = stack or f"bookshelf-{stage}"
    region = os.environ.get("AWS_REGION") or os.environ.get("AWS_DEFAULT_REGION") or "us-east-1"
    s3, cfn = _client("s3", region), _client("cloudformation", region)
    template = json.loads((directory / "sam.json").read_text())
    code_key = upload(s3, bucket, stack, directory / "deployment.zip")
    body = json.dumps(packaged(template, bucket, code_key), indent=1).encode()
    key = f"{stack}/{hashlib.sha256(body).hexdigest()}.template.json"
    s3.put_object(Bucket=bucket, Key=key, Body=body)
    # The URL form CloudFormation documents (virtual-hosted), the one `aws cloudformation deploy` gives.
    url = f"https://{bucket}.s3.{region}.amazonaws.com/{key}"
    exists = _status(cfn, stack) not in (None, "REVIEW_IN_PROGRESS")
    name = f"deploy-{int(time.time())}"
    cfn.create_change_set(
        StackName=stack,
        ChangeSetName=name,
        ChangeSetType="UPDATE" if exists else "CREATE",
        TemplateURL=url,
        Capabilities=CAPABILITIES,
        Parameters=[{"ParameterKey": k, "ParameterValue": v} for k, v in (parameters or {}).items()],
    )
    change = _wait_change_set(cfn, stack, name, timeout)
    if change is None:
        print(f"{stack}: no changes to deploy")
    else:
        cfn.execute_change_set(StackName=stack, ChangeSetName=name)
        _wait_stack(cfn, stack, timeout)
    described: dict[str, Any] = cfn.describe_stacks(StackName=stack)["Stacks"][0]
    return described


def _status(cfn: Any, stack: str) -> str | None:
    from botocore.exceptions import ClientError

    try:
        return str(cfn.describe_stacks(StackName=stack)["Stacks"][0]["StackStatus"])
    except ClientError as exc:
        if "does not exist" in str(exc):
            return None
        raise


def _wait_change_set(cfn: Any, stack: str, name: str, timeout: float) -> dict[str, Any] | None:
    """The created change set, or None when it has nothing to change."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        change: dict[str, Any] = cfn.describe_change_set(StackName=stack, ChangeSetName=name)
        if change["Status"] == "CREATE_COMPLETE":
            return change
        if change["Status"] == "FAILED":
            reason = change.get("StatusReason", "")
            if "didn't contain changes" in reason or "No updates" in reason:
                return None
            raise StackError(f"change set {name} failed: {reason}")
        time.sleep(2)
    raise StackError(f"change set {name} not created after {timeout:.0f}s")


def _wait_stack(cfn: Any, stack: str, timeout: float) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        status = _status(cfn, stack) or "missing"
        if status in ("CREATE_COMPLETE", "UPDATE_COMPLETE"):
            return
        if status.endswith("_FAILED") or status.endswith("ROLLBACK_COMPLETE") or status == "missing":
            events = cfn.describe_stack_events(StackName=stack)["StackEvents"]
            reasons = [
                f"{e['LogicalResourceId']}: {e.get('ResourceStatusReason')}"
                for e in events
                if "FAILED" in e["ResourceStatus"]
            ]
            raise StackError(f"{stack} is {status}: " + "; ".join(reasons[:10]))
        time.sleep(3)
    raise StackError(f"{stack} not complete after {timeout:.0f}s")


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m devtools.stack", description=__doc__.splitlines()[0])
    parser.add_argument("--stage", default=os.environ.get("STAGE", "dev"))
    parser.add_argument("--s3-bucket", required=True, help="an existing bucket for the zip and the template")
    parser.add_argument("--stack-name", default=None, help="default: bookshelf-<stage>")
    parser.add_argument("--parameter-overrides", nargs="*", default=[], metavar="KEY=VALUE")
    args = parser.parse_args(argv)
    parameters = dict(item.split("=", 1) for item in args.parameter_overrides)
    began = time.monotonic()
    from botocore.exceptions import ClientError

    try:
        stack = deploy(args.stage, args.s3_bucket, args.stack_name, parameters)
    except (StackError, ClientError) as exc:
        sys.exit(f"stack: {exc}")
    print(f"{stack['StackName']}: {stack['StackStatus']} in {time.monotonic() - began:.0f}s")
    for output in stack.get("Outputs", []):
        print(f"  {output['OutputKey']}: {output['OutputValue']}")


if __name__ == "__main__":
    main()
