"""LocalStack run by the project, in host mode (no Docker): install, start, test, stop.

LocalStack 2026.x needs Python >= 3.12 (PEP 695 syntax), so it gets a virtualenv of its own,
apart from the project's Python 3.11, in the user's cache directory
(`$XDG_CACHE_HOME/bookshelf-serverless/localstack-venv`, ~500 MB): installed from PyPI on first
use, then reused by every clone and kept by `make clean`. Its log and files go to `.local/localstack/`.

It serves S3, SQS, SSM, Secrets Manager, STS and API Gateway. Kept on the embedded emulator,
reached through botocore's per-service variables (`AWS_ENDPOINT_URL_DYNAMODB`, ...; no client
passes an explicit endpoint): DynamoDB (LocalStack's needs Java and a DynamoDB Local download)
and SES v1 + v2 (LocalStack's free build has no SES v2, which the app sends with; v1 shares
its account state, so it goes with v2). The run prints which service came from where.

  python -m devtools.backends.localstack test [pytest args]   # make test-localstack: the tiers that reach AWS
  python -m devtools.backends.localstack serve                # both endpoints, until Ctrl-C

With Docker, `localstack-compose.yml` runs LocalStack 4.14.0 (its last image that needs no
account) as a container with its own DynamoDB; point AWS_ENDPOINT_URL at it and run `make test`
(docs/DEPLOY.md).
Nothing here reaches the internet after the pip install: telemetry, the TLS certificate
download and the DNS server are switched off. Hand-written rather than the `localstack` CLI,
whose `start` runs the Docker container (host mode is only `localstack.runtime.main`).
"""

from __future__ import annotations

import argparse
import os
import signal
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path
from typing import TextIO

import requests

from devtools.emulator.process import free_port, start_process
from infra import pythons
from infra.stage import ROOT

REQUIREMENTS = ROOT / "requirements-localstack.txt"
HOME = ROOT / ".local" / "localstack"
CACHE = Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache") / "bookshelf-serverless"
#: Services LocalStack serves in host mode here; the rest of what the app uses is below.
LOCALSTACK_SERVICES = ("s3", "sqs", "ssm", "secretsmanager", "sts", "apigateway")
#: Services kept on the embedded emulator, with the reason.
EMULATED_SERVICES = {
    "dynamodb": "LocalStack's DynamoDB needs Java and DynamoDB Local downloads",
    "sesv2": "LocalStack's free build has no SES v2 (it answers 501); the app sends mail through v2",
    "ses": "v1 (send quota, sender identity) shares its account state with v2, so it goes where v2 is",
    # Keys are botocore's service ids as its AWS_ENDPOINT_URL_<ID> variables spell them.
    "cloudwatch_logs": "function logs go where the dashboard reads them; not among LocalStack's here",
    "cloudwatch": "metrics, alarms, dashboard (the emulator computes percentiles); not among LocalStack's here",
    "sns": "the alarms' topic; not among LocalStack's services here",
}
MIN_PYTHON = (3, 12)


class LocalStackError(RuntimeError):
    """LocalStack could not be installed or started; the message says why and where to look."""


def find_python() -> str:
    """A Python >= 3.12 for LocalStack: $LOCALSTACK_PYTHON, python3.13/3.12 on PATH, or pyenv's."""
    try:
        return pythons.find_python(MIN_PYTHON, variable="LOCALSTACK_PYTHON", purpose="LocalStack")
    except pythons.PythonNotFound as missing:
        raise LocalStackError(str(missing)) from None


def install(cache: Path = CACHE) -> Path:
    """The virtualenv's python, with requirements-localstack.txt installed (once per change)."""
    return pythons.cached_venv(cache / "localstack-venv", [REQUIREMENTS], find_python, "LocalStack")


def version(python: Path) -> str:
    """The installed localstack-core version."""
    script = "from importlib.metadata import version; print(version('localstack-core'))"
    return subprocess.run([str(python), "-c", script], capture_output=True, text=True, check=True).stdout.strip()


@dataclass
class Running:
    """A started LocalStack: its process, endpoint and log file."""

    proc: subprocess.Popen[bytes]
    endpoint: str
    log: Path


def localstack_environment(port: int, home: Path) -> dict[str, str]:
    """The variables LocalStack starts with: only these, so no AWS_* or auth token of the caller leaks in."""
    keep = {k: v for k, v in os.environ.items() if k in ("PATH", "HOME", "LANG", "LC_ALL", "TMPDIR")}
    return {
        **keep,
        "GATEWAY_LISTEN": f"127.0.0.1:{port}",
        "SERVICES": ",".join(LOCALSTACK_SERVICES),
        "EAGER_SERVICE_LOADING": "1",  # load them before the health check says ready
        "PERSISTENCE": "0",
        "DISABLE_EVENTS": "1",  # no analytics
        "SKIP_SSL_CERT_DOWNLOAD": "1",  # self-signed certificate, no download
        "DNS_ADDRESS": "0",  # no DNS server (it would look for an upstream resolver)
        "OVERRIDE_IN_DOCKER": "0",  # host mode: keep its files under FILESYSTEM_ROOT, not /var/lib
        "FILESYSTEM_ROOT": str(home / "filesystem"),
        "AWS_DEFAULT_REGION": "us-east-1",
    }


def start(python: Path, home: Path = HOME, port: int | None = None, timeout: float = 180.0) -> Running:
    """Start LocalStack on a free loopback port and wait until every service is available."""
    port = port or free_port()
    home.mkdir(parents=True, exist_ok=True)
    log_path = home / "localstack.log"
    with log_path.open("wb") as log:
        proc = subprocess.Popen(
            [str(python), "-m", "localstack.runtime.main"],
            env=localstack_environment(port, home),
            stdout=log,
            stderr=subprocess.STDOUT,
            start_new_session=True,  # Ctrl-C in the terminal reaches the tests, not LocalStack
        )
    running = Running(proc, f"http://127.0.0.1:{port}", log_path)
    try:
        wait_healthy(running, timeout)
    except LocalStackError:
        stop(running)
        raise
    return running


def wait_healthy(running: Running, timeout: float) -> None:
    """Block until /_localstack/health lists every service as available or running."""
    deadline, last = time.monotonic() + timeout, "no answer"
    while time.monotonic() < deadline:
        if running.proc.poll() is not None:
            raise LocalStackError(f"LocalStack exited with {running.proc.returncode}; see {running.log}")
        try:
            services = requests.get(f"{running.endpoint}/_localstack/health", timeout=2).json()["services"]
            waiting = [s for s in LOCALSTACK_SERVICES if services.get(s) not in ("available", "running")]
            if not waiting:
                return
            last = f"waiting for {', '.join(waiting)}"
        except (requests.RequestException, ValueError, KeyError) as exc:
            last = str(exc)
        time.sleep(0.5)
    raise LocalStackError(f"LocalStack not healthy after {timeout:.0f}s ({last}); see {running.log}")


def stop(running: Running | subprocess.Popen[bytes] | None, grace: float = 20.0) -> None:
    """Terminate a process started in its own session (and its children), then kill if it lingers."""
    proc = running.proc if isinstance(running, Running) else running
    if proc is None or proc.poll() is not None:
        return
    try:
        os.killpg(proc.pid, signal.SIGTERM)
    except ProcessLookupError:
        return
    try:
        proc.wait(timeout=grace)
    except subprocess.TimeoutExpired:
        os.killpg(proc.pid, signal.SIGKILL)
        proc.wait(timeout=10)


def sources(localstack: str, emulator: str, localstack_version: str) -> str:
    """Which service comes from where, for the log."""
    from importlib.metadata import version as installed

    lines = [f"  {s:<15} LocalStack {localstack_version} (host mode)  {localstack}" for s in LOCALSTACK_SERVICES]
    lines += [
        f"  {s:<15} embedded emulator (moto {installed('moto')})  {emulator}  ({why})"
        for s, why in EMULATED_SERVICES.items()
    ]
    return "AWS services for this run:\n" + "\n".join(lines)


#: Names the emulator that serves EMULATED_SERVICES, so that each xdist worker can start one of
#: its own in its place (tests/conftest.py): the fault injection and SES mailbox of an emulator are
#: the whole process's, and a worker's faults must not reach another worker's calls.
SHARED_EMULATOR = "BOOKSHELF_SHARED_EMULATOR"


def environment(localstack: str, emulator: str) -> dict[str, str]:
    """The variables that send each service to its endpoint (botocore reads them)."""
    env = {"AWS_ENDPOINT_URL": localstack, SHARED_EMULATOR: emulator}
    for service in EMULATED_SERVICES:
        env[f"AWS_ENDPOINT_URL_{service.upper()}"] = emulator
    return env


def _started(home: Path, log: TextIO) -> tuple[Running, subprocess.Popen[bytes], str, str]:
    python = install()
    localstack_version = version(python)
    localstack = start(python, home)
    try:
        emulator_proc, emulator = start_process(log=log, own_session=True)
    except BaseException:
        stop(localstack)
        raise
    return localstack, emulator_proc, emulator, localstack_version


def run_tests(pytest_args: list[str], home: Path = HOME) -> int:
    """pytest against LocalStack (+ DynamoDB and SES on the emulator); returns its exit code."""
    began = time.monotonic()
    home.mkdir(parents=True, exist_ok=True)
    with (home / "emulator.log").open("w") as log:
        localstack, emulator_proc, emulator, localstack_version = _started(home, log)
        try:
            print(sources(localstack.endpoint, emulator, localstack_version), flush=True)
            print(f"LocalStack ready after {time.monotonic() - began:.1f}s; log: {localstack.log}", flush=True)
            env = {**os.environ, **environment(localstack.endpoint, emulator)}
            tests = time.monotonic()
            # pyproject's addopts (-ra) list every skip with its reason (fault injection needs the emulator).
            command = [sys.executable, "-m", "pytest", *pytest_args]
            code = subprocess.run(command, cwd=ROOT, env=env).returncode
            print(f"pytest against LocalStack took {time.monotonic() - tests:.0f}s (exit {code})", flush=True)
        finally:
            stop(emulator_proc)
            stop(localstack)
    print(sources(localstack.endpoint, emulator, localstack_version), flush=True)
    print(f"make test-localstack: {time.monotonic() - began:.0f}s in all", flush=True)
    return code


def serve(home: Path = HOME) -> None:
    """Start both endpoints and print the variables to use them, until Ctrl-C."""
    home.mkdir(parents=True, exist_ok=True)
    with (home / "emulator.log").open("w") as log:
        localstack, emulator_proc, emulator, localstack_version = _started(home, log)
        try:
            print(sources(localstack.endpoint, emulator, localstack_version))
            for name, value in environment(localstack.endpoint, emulator).items():
                print(f"export {name}={value}")
            print("Ctrl-C stops both.", flush=True)
            while localstack.proc.poll() is None and emulator_proc.poll() is None:
                time.sleep(1)
        except KeyboardInterrupt:
            pass
        finally:
            stop(emulator_proc)
            stop(localstack)


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m devtools.backends.localstack", description=__doc__.splitlines()[0])
    commands = parser.add_subparsers(dest="command", required=True)
    commands.add_parser("install", help="create the LocalStack virtualenv")
    commands.add_parser("test", help="run the test suite against LocalStack; further arguments go to pytest")
    commands.add_parser("serve", help="start LocalStack and the emulator until Ctrl-C")
    args, pytest_args = parser.parse_known_args(argv)
    if pytest_args and args.command != "test":
        parser.error(f"unrecognized arguments: {' '.join(pytest_args)}")
    try:
        if args.command == "install":
            print(f"LocalStack {version(install())} in {CACHE / 'localstack-venv'}")
        elif args.command == "serve":
            serve()
        else:
            sys.exit(run_tests(pytest_args))
    except LocalStackError as exc:
        sys.exit(f"test-localstack: {exc}")
    except KeyboardInterrupt:  # LocalStack and the emulator were stopped on the way out
        sys.exit("test-localstack: interrupted")


if __name__ == "__main__":
    main()
