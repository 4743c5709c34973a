"""`make run`: the whole system on this machine.

The children run in sessions of their own, so Ctrl-C reaches only this process, which
stops them in order: the workers, the API, then the emulator.

Starts the embedded AWS emulator (unless AWS_ENDPOINT_URL points at one, e.g. LocalStack),
creates every resource, prints a development API key, then serves the API through the local
API Gateway (devtools/gateway.py) on http://127.0.0.1:8000 and runs the SQS runner for both
queues. Ctrl-C stops everything.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time

from devtools.stage import ROOT, stage_environment

STAGE = os.environ.get("STAGE", "local")
API_PORT = int(os.environ.get("API_PORT", "8000"))
EMULATOR_PORT = int(os.environ.get("EMULATOR_PORT", "4566"))


def _prepare_env() -> subprocess.Popen[bytes] | None:
    for key, value in stage_environment(STAGE).items():
        os.environ.setdefault(key, value)
    os.environ.setdefault("AWS_ACCESS_KEY_ID", "test")
    os.environ.setdefault("AWS_SECRET_ACCESS_KEY", "test")
    os.environ.setdefault("AWS_DEFAULT_REGION", "us-east-1")
    os.environ.setdefault("AWS_REGION", os.environ["AWS_DEFAULT_REGION"])
    if os.environ.get("AWS_ENDPOINT_URL"):
        print(f"using the AWS endpoint {os.environ['AWS_ENDPOINT_URL']}", flush=True)
        return None
    from devtools.emulator import start_process

    log_dir = ROOT / ".local"
    log_dir.mkdir(exist_ok=True)
    proc, endpoint = start_process(EMULATOR_PORT, log=(log_dir / "emulator.log").open("ab"), own_session=True)
    os.environ["AWS_ENDPOINT_URL"] = endpoint
    print(f"embedded AWS emulator on {endpoint} (log: .local/emulator.log)", flush=True)
    return proc


def _dev_key() -> str:
    from devtools.resources import create_api_key

    path = ROOT / ".local" / "api-key"
    path.parent.mkdir(exist_ok=True)
    key = path.read_text().strip() if path.exists() else ""
    key = create_api_key("dev", admin=True, key=key or None)
    path.write_text(key + "\n")
    return key


def api_command(stage: str, port: int) -> list[str]:
    """The command that serves the HTTP API on 127.0.0.1:`port`: the local API Gateway (devtools/gateway.py)."""
    return [sys.executable, "-m", "devtools.gateway", "--stage", stage, "--host", "127.0.0.1", "--port", str(port)]


def _interrupt(signum: int, frame: object) -> None:
    raise KeyboardInterrupt


def main() -> None:
    signal.signal(signal.SIGINT, _interrupt)  # also when started with SIGINT ignored
    signal.signal(signal.SIGTERM, _interrupt)
    children: list[subprocess.Popen[bytes]] = []
    emulator = _prepare_env()
    if emulator:
        children.append(emulator)
    try:
        from devtools.resources import create_all

        create_all()
        key = _dev_key()
        print("resources ready; development API key (admin, user 'dev') saved in .local/api-key", flush=True)
        print(f"  curl -H 'Authorization: Bearer {key}' http://127.0.0.1:{API_PORT}/queues", flush=True)
        children.append(subprocess.Popen(api_command(STAGE, API_PORT), cwd=ROOT, start_new_session=True))
        children.append(subprocess.Popen([sys.executable, "-m", "devtools.runner"], cwd=ROOT, start_new_session=True))
        print(f"API on http://127.0.0.1:{API_PORT}; workers polling both queues. Ctrl-C to stop.", flush=True)
        while all(child.poll() is None for child in children):
            time.sleep(0.5)
        print("a component exited; stopping", flush=True)
    except KeyboardInterrupt:
        print("\nstopping", flush=True)
    finally:
        for child in reversed(children):  # one after the other: the emulator goes last
            if child.poll() is None:
                child.send_signal(signal.SIGTERM)
            try:
                child.wait(timeout=10)
            except subprocess.TimeoutExpired:
                child.kill()


if __name__ == "__main__":
    main()
