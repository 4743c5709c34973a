"""MiniStack run by the project: the deployed-stack target of `make test-deployed`.

MiniStack (PyPI `ministack`, MIT, no account) serves every service the app uses and runs Python
functions in local worker processes with its own interpreter, so its virtualenv's Python must be
the functions' runtime (a zip built for python3.11 carries cp311 extensions). The venv is
`$XDG_CACHE_HOME/bookshelf-serverless/ministack-venv-python3.X`, installed from PyPI on first use
(requirements-ministack.txt, with boto3: the Lambda runtime provides it, so the zip leaves it
out) and reused afterwards. It is started through devtools/ministack_patches.py, which wraps
the gaps of the pinned release (docs/DEPLOY.md § MiniStack), on a free loopback port.

  python -m devtools.ministack test [pytest args]   # make test-deployed: deploy, then tests/deployed
  python -m devtools.ministack serve                # MiniStack until Ctrl-C (deploy into it yourself)
  python -m devtools.ministack install

Nothing here reaches the internet after the pip install.
"""

from __future__ import annotations

import argparse
import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import requests

from devtools import pythons
from devtools.emulator import free_port
from devtools.lambda_build import RUNTIME_PYTHON
from devtools.localstack import CACHE, LocalStackError, Running, stop
from devtools.stage import ROOT

REQUIREMENTS = ROOT / "requirements-ministack.txt"
PATCHES = ROOT / "devtools" / "ministack_patches.py"
HOME = ROOT / ".local" / "ministack"
#: The stage deployed into MiniStack (.chalice/config.json): dev's settings with short
#: visibility timeouts, backoffs and schedules, so retries and the reconciler run within a test.
STAGE = "ministack"
#: The stage the one-stack path deploys beside it (its resources have other names).
STACK_STAGE = "dev"
CREDENTIALS = {"AWS_ACCESS_KEY_ID": "test", "AWS_SECRET_ACCESS_KEY": "test", "AWS_DEFAULT_REGION": "us-east-1"}


class MiniStackError(LocalStackError):
    """MiniStack could not be installed, started or deployed into; the message says why."""


def install(version: tuple[int, int] = RUNTIME_PYTHON) -> Path:
    """MiniStack's venv on the functions' runtime Python `version` (it runs the functions with it)."""
    major, minor = version

    def interpreter() -> str:
        try:
            return pythons.find_python(version, variable="MINISTACK_PYTHON", exact=True, purpose="MiniStack")
        except pythons.PythonNotFound as missing:
            raise MiniStackError(str(missing)) from None

    venv = CACHE / f"ministack-venv-python{major}.{minor}"
    return pythons.cached_venv(venv, [REQUIREMENTS], interpreter, f"MiniStack (Python {major}.{minor})")


_KEEP = ("PATH", "HOME", "LANG", "LC_ALL", "MINISTACK_UNPATCHED", "MINISTACK_SQS_METRICS_SECONDS")


def ministack_environment(port: int, home: Path) -> dict[str, str]:
    """MiniStack's variables: loopback only, local executor, no fixed side ports, no caller AWS_*."""
    keep = {k: v for k, v in os.environ.items() if k in _KEEP}
    return {
        **keep,
        **CREDENTIALS,
        "GATEWAY_PORT": str(port),
        "BIND_HOST": "127.0.0.1",
        "MINISTACK_HOST": "localhost",
        "LAMBDA_EXECUTOR": "local",  # functions in worker processes of this venv's Python (no Docker)
        "IOT_MTLS_PORT": "0",  # its MQTT listener would take the fixed port 8883
        "PERSIST_STATE": "0",
        "TMPDIR": str((home / "tmp").resolve()),  # the functions' unpacked code, and MiniStack's scratch files
    }


def start(python: Path, home: Path = HOME, port: int | None = None, timeout: float = 120.0) -> Running:
    """Start (patched) MiniStack on a free loopback port and wait for /_ministack/health."""
    port = port or free_port()
    (home / "tmp").mkdir(parents=True, exist_ok=True)
    log_path = home / "ministack.log"
    with log_path.open("wb") as log:
        proc = subprocess.Popen(
            [str(python), str(PATCHES)],
            env=ministack_environment(port, home),
            cwd=home,
            stdout=log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
    running = Running(proc, f"http://127.0.0.1:{port}", log_path)
    deadline, last = time.monotonic() + timeout, "no answer"
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise MiniStackError(f"MiniStack exited with {proc.returncode}; see {log_path}")
        try:
            answer = requests.get(f"{running.endpoint}/_ministack/health", timeout=2)
            if answer.ok and answer.json().get("services"):
                return running
            last = f"HTTP {answer.status_code}"
        except (requests.RequestException, ValueError) as exc:
            last = str(exc)
        time.sleep(0.5)
    stop(running)
    raise MiniStackError(f"MiniStack not healthy after {timeout:.0f}s ({last}); see {log_path}")


def deploy_environment(endpoint: str) -> dict[str, str]:
    """The variables a deploy or the tests use to reach MiniStack (every service at one endpoint)."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("AWS_")}
    return {**env, **CREDENTIALS, "AWS_ENDPOINT_URL": endpoint}


def deploy(endpoint: str, stage: str = STAGE) -> dict[str, Any]:
    """`make deploy` into MiniStack (devtools/deploy.py as a user runs it); what tests/deployed needs."""
    env = deploy_environment(endpoint)
    began = time.monotonic()
    command = [sys.executable, "-m", "devtools.deploy", "--stage", stage, "--endpoint", endpoint]
    subprocess.run(command, cwd=ROOT, env=env, check=True)
    seconds = time.monotonic() - began
    deployed = json.loads((ROOT / ".chalice" / "deployed" / f"{stage}.json").read_text())
    rest_api = next(r for r in deployed["resources"] if r["resource_type"] == "rest_api")
    keys = {name: _api_key(env, stage, name, admin) for name, admin in (("owner", False), ("ops", True))}
    return {
        "stage": stage,
        "endpoint": endpoint,
        "api_url": f"{endpoint}/_aws/execute-api/{rest_api['rest_api_id']}/api",
        "rest_api_id": rest_api["rest_api_id"],
        "keys": keys,
        "deploy_seconds": round(seconds, 1),
    }


def deploy_stack(endpoint: str, stage: str = STACK_STAGE, bucket: str = "bookshelf-artifacts") -> dict[str, Any]:
    """The one stack (docs/DEPLOY.md § 1) into MiniStack: `make package`, then devtools/stack.py."""
    env = deploy_environment(endpoint)
    began = time.monotonic()
    subprocess.run(["make", "package", f"STAGE={stage}"], cwd=ROOT, env=env, check=True)
    packaged = time.monotonic() - began
    s3, cfn = _client("s3", endpoint), _client("cloudformation", endpoint)
    s3.create_bucket(Bucket=bucket)
    command = [sys.executable, "-m", "devtools.stack", "--stage", stage, "--s3-bucket", bucket]
    subprocess.run([*command, "--parameter-overrides", "AlarmEmail=ops@example.com"], cwd=ROOT, env=env, check=True)
    outputs = {
        o["OutputKey"]: o["OutputValue"]
        for o in cfn.describe_stacks(StackName=f"bookshelf-{stage}")["Stacks"][0]["Outputs"]
    }
    return {
        "stack_stage": stage,
        "stack_api_url": f"{endpoint}/_aws/execute-api/{outputs['RestAPIId']}/api",
        "stack_keys": {"owner": _api_key(env, stage, "owner", False), "ops": _api_key(env, stage, "ops", True)},
        "stack_package_seconds": round(packaged, 1),
        "stack_deploy_seconds": round(time.monotonic() - began - packaged, 1),
    }


def _client(service: str, endpoint: str) -> Any:
    import boto3

    # MiniStack's fixed test credentials, passed by name (the repository's secret scan reads a long
    # value after `aws_secret_access_key=` as a secret).
    return boto3.client(
        service,
        endpoint_url=endpoint,
        **{
            "region_name": CREDENTIALS["AWS_DEFAULT_REGION"],
            "aws_access_key_id": CREDENTIALS["AWS_ACCESS_KEY_ID"],
            "aws_secret_access_key": CREDENTIALS["AWS_SECRET_ACCESS_KEY"],
        },
    )


def _api_key(env: dict[str, str], stage: str, name: str, admin: bool) -> str:
    """A new API key from `devtools.ops create-api-key` (printed once, last line)."""
    command = [sys.executable, "-m", "devtools.ops", "--stage", stage, "create-api-key", name]
    out = subprocess.run(
        [*command, *(["--admin"] if admin else [])], cwd=ROOT, env=env, check=True, capture_output=True
    )
    return out.stdout.decode().strip().splitlines()[-1].strip()


def run_tests(pytest_args: list[str], home: Path = HOME) -> int:
    """Deploy the app into a fresh MiniStack and run tests/deployed against it; pytest's exit code."""
    began = time.monotonic()
    version = RUNTIME_PYTHON
    python = install(version)
    ministack = start(python, home)
    deployed = "not finished"
    try:
        print(f"MiniStack ready after {time.monotonic() - began:.1f}s at {ministack.endpoint}; log {ministack.log}")
        print(f"deploying stage {STAGE} (runtime python{version[0]}.{version[1]}) with `make deploy`'s tooling")
        target = deploy(ministack.endpoint)
        deployed = f"{target['deploy_seconds']}s"
        print(f"deployed in {deployed}; API {target['api_url']}", flush=True)
        target.update(deploy_stack(ministack.endpoint))
        print(
            f"one stack: packaged in {target['stack_package_seconds']}s, deployed in {target['stack_deploy_seconds']}s"
        )
        (home / "timings.json").unlink(missing_ok=True)
        target_file = home / "target.json"
        target_file.write_text(json.dumps({**target, "log": str(ministack.log)}, indent=2))
        env = {**deploy_environment(ministack.endpoint), "DEPLOYED_TARGET": str(target_file)}
        tests = time.monotonic()
        command = [sys.executable, "-m", "pytest", "tests/deployed", "--confcutdir", "tests/deployed", *pytest_args]
        code = subprocess.run(command, cwd=ROOT, env=env).returncode
        print(f"tests/deployed took {time.monotonic() - tests:.0f}s (exit {code})")
        measured = home / "timings.json"
        if measured.exists():
            print(f"on the deployed stack: {measured.read_text()}")
    finally:
        stop(ministack)
    print(f"make test-deployed: {time.monotonic() - began:.0f}s in all (deploy {deployed})")
    return code


def serve(home: Path = HOME, port: int | None = None) -> None:
    """Start MiniStack and print how to deploy into it, until Ctrl-C."""
    ministack = start(install(), home, port)
    # Stopped by SIGTERM too (a background job ignores Ctrl-C's SIGINT): MiniStack and its workers go with it.
    signal.signal(signal.SIGTERM, signal.default_int_handler)
    try:
        print(f"MiniStack at {ministack.endpoint} (log {ministack.log}); deploy into it with:")
        print(f"  AWS_ENDPOINT_URL={ministack.endpoint} make deploy STAGE={STAGE}")
        print("Ctrl-C stops it.", flush=True)
        while ministack.proc.poll() is None:
            time.sleep(1)
    except KeyboardInterrupt:
        pass
    finally:
        stop(ministack)


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m devtools.ministack", description=__doc__.splitlines()[0])
    commands = parser.add_subparsers(dest="command", required=True)
    commands.add_parser("install", help="create MiniStack's virtualenv for the functions' runtime")
    commands.add_parser("test", help="deploy into MiniStack and run tests/deployed; further arguments go to pytest")
    serving = commands.add_parser("serve", help="start MiniStack until Ctrl-C")
    serving.add_argument("--port", type=int, default=None)
    args, pytest_args = parser.parse_known_args(argv)
    if pytest_args and args.command != "test":
        parser.error(f"unrecognized arguments: {' '.join(pytest_args)}")
    try:
        if args.command == "install":
            print(f"MiniStack in {install()}")
        elif args.command == "serve":
            serve(port=args.port)
        else:
            sys.exit(run_tests(pytest_args))
    except (LocalStackError, subprocess.CalledProcessError) as exc:
        sys.exit(f"test-deployed: {exc}")
    except KeyboardInterrupt:
        sys.exit("test-deployed: interrupted")


if __name__ == "__main__":
    main()
