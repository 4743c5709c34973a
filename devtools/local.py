"""`make run`: the whole system on this machine, supervised, with its state kept across restarts.

Starts the embedded AWS emulator (unless AWS_ENDPOINT_URL points at one, e.g. LocalStack)
with its state in `.local/emulator-state.pickle` (restored at start, saved every few
seconds and on stop; `FRESH=1` starts empty), creates every resource, prints a development
API key and each function's limits, then serves the API (`api_command()`) on
http://127.0.0.1:8000 and runs the SQS/schedule runner with sandboxes. A supervisor
restarts the API or the runner when they die; only the emulator's death or a stop signal
(SIGINT/Ctrl-C, SIGTERM, SIGHUP, also when sent to `make` alone: `_watch_parent`) stops
everything, in order: the workers, the API, the emulator last (which saves its state).

The API is served through the local API Gateway (devtools/gateway/server.py) by
devtools/local_api.py (`api_command()`), which registers the runner's counters in the app.

Environment: STAGE (local), API_PORT (8000), EMULATOR_PORT (4566), RUNNER_STATS_PORT
(any free port), LOCAL_STATE_DIR (.local), FRESH (0).
"""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import threading
import time
from pathlib import Path

from devtools.runtime.supervisor import Child, Supervisor
from infra.stage import ROOT, stage_environment

STAGE = os.environ.get("STAGE", "local")
API_PORT = int(os.environ.get("API_PORT", "8000"))
EMULATOR_PORT = int(os.environ.get("EMULATOR_PORT", "4566"))
STATE_DIR = Path(os.environ.get("LOCAL_STATE_DIR") or ROOT / ".local")
FRESH = os.environ.get("FRESH", "").strip().lower() in {"1", "true", "yes", "on"}
STATE_FILE = STATE_DIR / "emulator-state.pickle"


def _prepare_env() -> subprocess.Popen[bytes] | None:
    os.environ.setdefault("PUBLIC_BASE_URL", f"http://127.0.0.1:{API_PORT}")  # links in mail reach this API
    for key, value in stage_environment(STAGE).items():
        os.environ.setdefault(key, value)
    os.environ.setdefault("AWS_ACCESS_KEY_ID", "test")
    os.environ.setdefault("AWS_SECRET_ACCESS_KEY", "test")
    os.environ.setdefault("AWS_DEFAULT_REGION", "us-east-1")
    os.environ.setdefault("AWS_REGION", os.environ["AWS_DEFAULT_REGION"])
    if os.environ.get("AWS_ENDPOINT_URL"):
        print(f"using the AWS endpoint {os.environ['AWS_ENDPOINT_URL']} (its state is its own)", flush=True)
        return None
    from devtools.emulator.process import start_process

    STATE_DIR.mkdir(parents=True, exist_ok=True)
    if FRESH and STATE_FILE.exists():
        STATE_FILE.unlink()
        print("FRESH=1: starting with an empty emulator", flush=True)
    elif STATE_FILE.exists():
        print(f"restoring the emulator's state from {_shown(STATE_FILE)} (FRESH=1 starts empty)", flush=True)
    log = (STATE_DIR / "emulator.log").open("ab")
    proc, endpoint = start_process(EMULATOR_PORT, log=log, own_session=True, state=STATE_FILE)
    os.environ["AWS_ENDPOINT_URL"] = endpoint
    print(f"embedded AWS emulator on {endpoint} (log: {_shown(STATE_DIR / 'emulator.log')})", flush=True)
    return proc


def _shown(path: Path) -> str:
    try:
        return str(path.relative_to(ROOT))
    except ValueError:
        return str(path)


def _dev_key() -> str:
    from infra.local import create_api_key

    path = STATE_DIR / "api-key"
    path.parent.mkdir(parents=True, exist_ok=True)
    key = path.read_text().strip() if path.exists() else ""
    key = create_api_key("dev", admin=True, key=key or None)
    # An admin key: readable by its owner only (0600), also when an older run wrote it 0644.
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    os.fchmod(fd, 0o600)
    with os.fdopen(fd, "w") as out:
        out.write(key + "\n")
    return key


def api_command(stage: str, port: int, runner_stats_url: str | None = None) -> list[str]:
    """The command that serves the HTTP API on 127.0.0.1:`port`: the local API Gateway
    (devtools/local_api.py), with the runner's counters at `runner_stats_url` registered in it."""
    command = [sys.executable, "-m", "devtools.local_api", "--stage", stage, "--host", "127.0.0.1", "--port", str(port)]
    return command + (["--runner-stats", runner_stats_url] if runner_stats_url else [])


def runner_command(stats_port: int) -> list[str]:
    """The SQS/schedule runner, with sandboxes, schedules at their own rate, and its counters on `stats_port`."""
    return [sys.executable, "-m", "devtools.runtime.runner", "--stats-port", str(stats_port), "--schedule-seconds", "0"]


def describe_functions(stage: str) -> list[str]:
    """Each Lambda function of the app with its trigger and limits (as `chalice deploy` would set them)."""
    from chalice.app import ScheduledEventConfig, SQSEventConfig

    import app
    from devtools.runtime.limits import function_limits
    from devtools.runtime.runner import SchedulePoller

    rows: list[tuple[str, str]] = [("api_handler", "HTTP API")]
    rows += [(auth.name, "authorizer") for auth in app.app.builtin_auth_handlers]
    for source in app.app.event_sources:
        if isinstance(source, SQSEventConfig):
            rows.append(
                (
                    source.name,
                    f"queue {source.queue}, batch {source.batch_size}, max concurrency {source.maximum_concurrency}",
                )
            )
        elif isinstance(source, ScheduledEventConfig):
            rows.append((source.name, f"every {SchedulePoller.interval(source):.0f} s"))
    lines = []
    for name, trigger in rows:
        limits = function_limits(name, stage)
        lines.append(f"  {name:<24} {trigger}; timeout {limits.timeout_seconds} s, memory {limits.memory_mb} MB")
    return lines


def _write_pids(supervisor: Supervisor) -> None:
    """`<state dir>/pids.json`: the current pid of each part (for ops scripts and the tests)."""
    pids = {child.name: child.proc.pid for child in supervisor.children if child.proc is not None}
    # Written aside and renamed: a reader never sees the file half written (or empty, as the
    # make-run test once did while the supervisor replaced a killed part).
    partial = STATE_DIR / "pids.json.partial"
    partial.write_text(json.dumps(pids) + "\n")
    partial.replace(STATE_DIR / "pids.json")


def _announce_when_listening(port: int, message: str, within: float = 120) -> None:
    """Print `message` once the API accepts connections, so that it is true when it is read
    (the gateway takes a few seconds to import the app); say so if it never does."""

    def wait() -> None:
        deadline = time.monotonic() + within
        while time.monotonic() < deadline:
            try:
                socket.create_connection(("127.0.0.1", port), timeout=1).close()
            except OSError:
                time.sleep(0.2)
                continue
            print(message, flush=True)
            return
        print(f"the API is not listening on port {port} after {within:.0f} s; see its output above", flush=True)

    threading.Thread(target=wait, name="announce-api", daemon=True).start()


STOP_SIGNALS = (signal.SIGINT, signal.SIGTERM, signal.SIGHUP)


def _interrupt(signum: int, frame: object) -> None:
    raise KeyboardInterrupt


def _already_stopping(signum: int, frame: object) -> None:
    print(f"{signal.Signals(signum).name} while stopping: still stopping in order", flush=True)


def _caught_signals(pid: int) -> int | None:
    """The mask of signals process `pid` handles (Linux /proc), or None where it cannot be read."""
    try:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith("SigCgt:"):
                return int(line.split()[1], 16)
    except (OSError, ValueError):
        return None
    return None


def _watch_parent(every: float = 0.5) -> None:
    """Stop like on SIGTERM when our parent (`make`) dies or is being stopped by a signal.

    `make run` execs us, so `make` is our parent. GNU make passes a SIGTERM on to its
    children, but on a SIGHUP or SIGINT sent to it alone it only waits for them (it expects
    the terminal to have signalled the whole group), and a SIGKILL leaves us orphaned. make
    resets a fatal signal to its default while it handles it (to re-raise it after), so a stop
    signal it caught at our start and no longer catches means it is stopping.
    """
    parent = os.getppid()
    try:
        is_make = Path(f"/proc/{parent}/comm").read_text().strip() in ("make", "gmake")
    except OSError:
        is_make = False
    watched = sum(1 << (sig - 1) for sig in STOP_SIGNALS)
    caught_at_start = (_caught_signals(parent) or 0) & watched if is_make else 0

    def watch() -> None:
        while True:
            time.sleep(every)
            caught = _caught_signals(parent)
            gone = os.getppid() != parent
            if gone or (caught is not None and caught & caught_at_start != caught_at_start):
                print(f"\nthe parent process {parent} {'went away' if gone else 'got a stop signal'}", flush=True)
                os.kill(os.getpid(), signal.SIGTERM)
                return

    threading.Thread(target=watch, name="watch-parent", daemon=True).start()


def main() -> None:
    for sig in STOP_SIGNALS:
        signal.signal(sig, _interrupt)  # SIGINT also when started with it ignored
    _watch_parent()
    STATE_DIR.mkdir(parents=True, exist_ok=True)
    supervisor = Supervisor()
    supervisor.on_start = lambda child: _write_pids(supervisor)
    try:
        emulator = _prepare_env()
        if emulator is not None:
            supervisor.add(Child("emulator", [], essential=True), proc=emulator)
        from devtools.emulator.process import free_port
        from infra.local import create_all

        create_all()
        key = _dev_key()
        stats_port = int(os.environ.get("RUNNER_STATS_PORT") or free_port())
        stats_url = f"http://127.0.0.1:{stats_port}/stats"
        print("functions (local sandboxes get these limits):", flush=True)
        for line in describe_functions(STAGE):
            print(line, flush=True)
        print(f"resources ready; development API key (admin, user 'dev') saved in {_shown(STATE_DIR / 'api-key')}")
        print(f"  curl -H 'Authorization: Bearer {key}' http://127.0.0.1:{API_PORT}/queues", flush=True)
        supervisor.add(Child("api", api_command(STAGE, API_PORT, stats_url), env=dict(os.environ), cwd=ROOT))
        supervisor.add(Child("runner", runner_command(stats_port), env=dict(os.environ), cwd=ROOT))
        _announce_when_listening(
            API_PORT, f"API on http://127.0.0.1:{API_PORT}; runner counters at {stats_url}. Ctrl-C to stop."
        )
        supervisor.run()
    except KeyboardInterrupt:
        print("\nstopping: workers, API, then the emulator (which saves its state)", flush=True)
    finally:
        for sig in STOP_SIGNALS:  # a second signal must not cut the ordered stop short (orphans)
            signal.signal(sig, _already_stopping)
        supervisor.stop()


if __name__ == "__main__":
    main()
