"""Start the embedded emulator as a child process, as `make run`, the tests, the bench and the
other backends' launchers do (they need a port and a running endpoint, not the server's code)."""

from __future__ import annotations

import socket
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import requests


def free_port() -> int:
    """An unused TCP port on loopback."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def wait_until_up(endpoint: str, timeout: float = 30.0) -> None:
    """Block until the endpoint answers its health check."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            if requests.get(f"{endpoint}/_emulator/health", timeout=1).ok:
                return
        except requests.RequestException:
            pass
        time.sleep(0.1)
    raise TimeoutError(f"emulator at {endpoint} did not start within {timeout}s")


def start_process(
    port: int | None = None, log: Any = None, own_session: bool = False, state: Path | None = None
) -> tuple[subprocess.Popen[bytes], str]:
    """Start the emulator in a child process; returns it and its endpoint URL.

    With `own_session` the terminal's Ctrl-C does not reach it: the parent stops it last.
    With `state` it restores and keeps saving its state in that file.
    """
    port = port or free_port()
    persist = ["--state", str(state)] if state is not None else []
    proc = subprocess.Popen(
        [sys.executable, "-m", "devtools.emulator.server", "--host", "127.0.0.1", "--port", str(port), *persist],
        stdout=log or subprocess.DEVNULL,
        stderr=subprocess.STDOUT if log else subprocess.DEVNULL,
        start_new_session=own_session,
    )
    endpoint = f"http://127.0.0.1:{port}"
    try:
        wait_until_up(endpoint, timeout=120 if state is not None else 30)  # a restore imports every service
    except TimeoutError:
        proc.kill()
        raise
    return proc, endpoint
