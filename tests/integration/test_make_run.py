"""`make run` as a user meets it: a supervised stack whose state survives restarts.

Starts `python -m devtools.local` (what `make run` runs) as a real process with free ports
and a private state directory, kills its parts with SIGKILL, restarts it, and starts it
with FRESH=1. It uses its own emulator, not the test session's.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any, cast

import pytest
import requests
from helpers import b64, eventually, jpeg_bytes
from session_env import TEST_ENV

from devtools.emulator.process import free_port

# One xdist worker takes the whole file (--dist loadgroup):
# each test starts a whole `make run`: one at a time, not several at once.
pytestmark = [pytest.mark.xdist_group("make_run"), pytest.mark.e2e]


ROOT = Path(__file__).resolve().parents[2]
SESSION_ONLY = {*TEST_ENV, "AWS_ENDPOINT_URL", "RESOURCE_PREFIX"}


class MakeRun:
    """One `make run` process (and its children) on the given ports and state directory."""

    def __init__(self, state_dir: Path, api_port: int, emulator_port: int, fresh: bool = False) -> None:
        self.state_dir, self.base = state_dir, f"http://127.0.0.1:{api_port}"
        # Per-service endpoints too (make test-localstack sets AWS_ENDPOINT_URL_DYNAMODB): make run's
        # own emulator must serve every service, or its state (and FRESH=1) would be the session's.
        env = {k: v for k, v in os.environ.items() if k not in SESSION_ONLY and not k.startswith("AWS_ENDPOINT_URL")}
        env.update(
            API_PORT=str(api_port),
            EMULATOR_PORT=str(emulator_port),
            LOCAL_STATE_DIR=str(state_dir),
            FRESH="1" if fresh else "0",
        )
        # In the test's own directory (pytest keeps the last few), closed by stop().
        self.log = tempfile.NamedTemporaryFile(dir=state_dir, prefix="make-run-", suffix=".log", delete=False)
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "devtools.local"], cwd=ROOT, env=env, stdout=self.log, stderr=subprocess.STDOUT
        )
        try:
            eventually(self.up, timeout=180, interval=0.5, what="the API under make run")
            self.key = (state_dir / "api-key").read_text().strip()
        except BaseException:
            self.stop()  # never leave a stack running behind a failed start
            raise

    def up(self) -> bool:
        try:
            return requests.get(f"{self.base}/books", timeout=5).status_code == 200
        except requests.RequestException:
            return False

    def pids(self) -> dict[str, int]:
        return cast("dict[str, int]", json.loads((self.state_dir / "pids.json").read_text()))

    def call(self, method: str, path: str, body: Any = None) -> tuple[int, Any]:
        response = requests.request(
            method, f"{self.base}{path}", json=body, headers={"Authorization": f"Bearer {self.key}"}, timeout=30
        )
        return response.status_code, response.json() if response.content else None

    def output(self) -> str:
        return Path(self.log.name).read_text(errors="replace")

    def stop(self) -> None:
        """Ctrl-C."""
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGINT)
            try:
                self.proc.wait(timeout=90)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        self.log.close()  # `output()` still reads it by name


@pytest.fixture
def make_run(tmp_path: Path) -> Iterator[Any]:
    started: list[MakeRun] = []
    ports = (free_port(), free_port())

    def start(fresh: bool = False) -> MakeRun:
        run = MakeRun(tmp_path, *ports, fresh=fresh)
        started.append(run)
        return run

    yield start
    for run in started:
        run.stop()


def _cover_ready(run: MakeRun, book_id: str) -> dict[str, Any] | None:
    status, book = run.call("GET", f"/books/{book_id}")
    return book if status == 200 and book["cover_status"] == "ready" else None


def test_make_run_restarts_dead_parts_and_keeps_its_state(make_run: Any) -> None:
    run = make_run()
    for line in ("media_worker", "batch 1, max concurrency 2; timeout 60 s, memory 1536 MB", "default_worker"):
        assert line in run.output()

    # SIGKILL the API: the supervisor brings it back.
    old = run.pids()
    os.kill(old["api"], signal.SIGKILL)
    eventually(lambda: run.pids()["api"] != old["api"] and run.up(), timeout=60, what="the API back")

    # A book whose cover is being resized when the runner is SIGKILLed: the work still completes.
    status, created = run.call(
        "POST", "/books", {"title": "Kept", "authors": ["Ann Author"], "cover": b64(jpeg_bytes())}
    )
    assert status == 202
    book_id = created["book"]["id"]
    os.kill(run.pids()["runner"], signal.SIGKILL)
    eventually(lambda: run.pids()["runner"] != old["runner"], timeout=60, what="the runner back")
    book = eventually(lambda: _cover_ready(run, book_id), timeout=180, what="the thumbnails")
    assert "restarted" in run.output() and run.pids()["emulator"] == old["emulator"]

    def runtime_by_queue() -> dict[str, Any] | None:
        """`/queues`' runtime entries once every queue has one (None while the counters do not answer in time)."""
        status, queues = run.call("GET", "/queues")
        assert status == 200
        found = {q["queue"]: q["runtime"] for q in queues["queues"]}
        return found if all(found.values()) else None

    runtime = eventually(runtime_by_queue, timeout=60, interval=1, what="the runner's counters in /queues")
    assert runtime["media"]["function"] == "media_worker" and runtime["media"]["memory_mb"] == 1536
    assert runtime["default"]["timeout_seconds"] == 30

    # Ctrl-C, then start again: the book and its thumbnails are still there.
    run.stop()
    assert run.proc.returncode is not None and (run.state_dir / "emulator-state.pickle").exists()
    again = make_run()
    status, kept = again.call("GET", f"/books/{book_id}")
    assert status == 200 and kept["cover_status"] == "ready"
    thumbnail = requests.get(kept["cover"]["thumbnails"]["100.jpg"]["url"], timeout=10)
    assert thumbnail.status_code == 200 and thumbnail.content[:2] == b"\xff\xd8"
    assert set(kept["cover"]["thumbnails"]) == set(book["cover"]["thumbnails"])

    # FRESH=1: empty.
    again.stop()
    fresh = make_run(fresh=True)
    assert fresh.call("GET", f"/books/{book_id}")[0] == 404


def _descendants(pid: int) -> set[int]:
    """Every process below `pid` (Linux /proc), whichever session it runs in."""
    children: dict[int, list[int]] = {}
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                ppid = int((entry / "stat").read_text().rsplit(")", 1)[1].split()[1])
            except (OSError, IndexError, ValueError):
                continue
            children.setdefault(ppid, []).append(int(entry.name))
    found, todo = set(), [pid]
    while todo:
        for child in children.get(todo.pop(), []):
            if child not in found:
                found.add(child)
                todo.append(child)
    return found


def _alive(pid: int) -> bool:
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except OSError:
        return False
    return state != "Z"


def _port_free(port: int) -> bool:
    import socket

    with socket.socket() as probe:
        probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            probe.bind(("127.0.0.1", port))
        except OSError:
            return False
    return True


@pytest.mark.skipif(not Path("/proc/self/status").exists(), reason="needs Linux /proc to find the processes")
@pytest.mark.parametrize("stop", [signal.SIGTERM, signal.SIGHUP, signal.SIGINT], ids=lambda s: s.name)
def test_any_stop_signal_to_make_stops_everything_in_order(tmp_path: Path, stop: signal.Signals) -> None:
    """GIVEN `make run` WHEN only the make process gets a stop signal THEN no part stays behind holding a port."""
    api_port, emulator_port = free_port(), free_port()
    env = {k: v for k, v in os.environ.items() if k not in SESSION_ONLY and not k.startswith("AWS_ENDPOINT_URL")}
    env.update(API_PORT=str(api_port), EMULATOR_PORT=str(emulator_port), LOCAL_STATE_DIR=str(tmp_path), FRESH="1")
    env.pop("MAKEFLAGS", None)
    log = tmp_path / "make.log"
    with log.open("wb") as out:
        make = subprocess.Popen(
            ["make", "--no-print-directory", "run"], cwd=ROOT, env=env, stdout=out, stderr=subprocess.STDOUT
        )
    parts: set[int] = set()
    try:

        def up() -> bool:
            try:
                return requests.get(f"http://127.0.0.1:{api_port}/books", timeout=5).status_code == 200
            except requests.RequestException:
                return False

        eventually(up, timeout=180, interval=0.5, what="the API under make run")
        assert oct((tmp_path / "api-key").stat().st_mode & 0o777) == "0o600"
        pids = json.loads((tmp_path / "pids.json").read_text())
        parts = _descendants(make.pid)
        assert set(pids.values()) <= parts
        make.send_signal(stop)
        make.wait(timeout=120)
        eventually(lambda: not any(_alive(pid) for pid in parts), timeout=30, what="every part of make run gone")
        assert _port_free(api_port) and _port_free(emulator_port)
        text = log.read_text(errors="replace")
        assert text.index("[supervisor] runner stopped") < text.index("[supervisor] api stopped")
        assert text.index("[supervisor] api stopped") < text.index("[supervisor] emulator stopped")
    finally:
        for pid in [make.pid, *parts]:
            if _alive(pid):
                os.kill(pid, signal.SIGKILL)
        make.wait(timeout=30)
