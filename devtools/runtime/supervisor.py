"""Keeps `make run`'s processes alive: a child that dies is restarted with backoff and logged.

Only the death of an essential child (the emulator: every other part needs its state) ends
the run. Stopping goes in the reverse order of `add`: the workers, the API, the emulator last.
"""

from __future__ import annotations

import signal
import subprocess
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

FIRST_DELAY_SECONDS = 0.5
MAX_DELAY_SECONDS = 30.0
HEALTHY_AFTER_SECONDS = 30.0  # a child that ran this long starts its backoff afresh
STOP_GRACE_SECONDS = 15.0


@dataclass
class Child:
    """One supervised process."""

    name: str
    command: list[str]
    essential: bool = False
    env: dict[str, str] | None = None
    cwd: Path | None = None
    proc: subprocess.Popen[bytes] | None = None
    started_at: float = 0.0
    restarts: int = 0
    failures_in_a_row: int = 0
    restart_at: float | None = None
    start: Callable[[Child], subprocess.Popen[bytes]] | None = field(default=None, repr=False)

    def spawn(self) -> None:
        if self.start is not None:
            self.proc = self.start(self)
        else:
            # A session of its own: the terminal's Ctrl-C reaches only the supervisor, which stops children in order.
            self.proc = subprocess.Popen(self.command, cwd=self.cwd, env=self.env, start_new_session=True)
        self.started_at = time.monotonic()


class Supervisor:
    """Starts, watches and stops a set of children."""

    def __init__(self, say: Callable[[str], None] = lambda line: print(line, flush=True)) -> None:
        self.children: list[Child] = []
        self.say = say
        self.on_start: Callable[[Child], None] = lambda child: None

    def add(self, child: Child, proc: subprocess.Popen[bytes] | None = None) -> Child:
        """Supervise `child`; start it unless `proc` (already running) is given."""
        if proc is not None:
            child.proc, child.started_at = proc, time.monotonic()
        else:
            child.spawn()
        self.children.append(child)
        self.on_start(child)
        return child

    def check(self) -> Child | None:
        """One round: restart what is due; returns an essential child that died, if any."""
        now = time.monotonic()
        for child in self.children:
            if child.proc is None:
                continue
            if child.restart_at is not None:
                if now >= child.restart_at:
                    child.restart_at = None
                    child.restarts += 1
                    child.spawn()
                    self.say(f"[supervisor] {child.name} restarted (pid {child.proc.pid}, restart {child.restarts})")
                    self.on_start(child)
                continue
            code = child.proc.poll()
            if code is None:
                continue
            if child.essential:
                self.say(f"[supervisor] {child.name} exited ({_how(code)}); stopping everything")
                return child
            ran = now - child.started_at
            child.failures_in_a_row = 1 if ran >= HEALTHY_AFTER_SECONDS else child.failures_in_a_row + 1
            delay = min(MAX_DELAY_SECONDS, FIRST_DELAY_SECONDS * 2 ** (child.failures_in_a_row - 1))
            child.restart_at = now + delay
            self.say(f"[supervisor] {child.name} exited ({_how(code)}) after {ran:.1f} s; restarting in {delay:.1f} s")
        return None

    def run(self, poll_seconds: float = 0.25) -> Child:
        """Watch until an essential child dies (Ctrl-C raises KeyboardInterrupt out of here)."""
        while True:
            died = self.check()
            if died is not None:
                return died
            time.sleep(poll_seconds)

    def stop(self) -> None:
        """SIGTERM each child in reverse order of `add`, waiting for each; SIGKILL after the grace period."""
        for child in reversed(self.children):
            proc = child.proc
            if proc is None or proc.poll() is not None:
                continue
            proc.send_signal(signal.SIGTERM)
            try:
                proc.wait(timeout=STOP_GRACE_SECONDS)
            except subprocess.TimeoutExpired:
                self.say(f"[supervisor] {child.name} did not stop in {STOP_GRACE_SECONDS:.0f} s; killing it")
                proc.kill()
                proc.wait()
            self.say(f"[supervisor] {child.name} stopped")


def _how(code: int) -> str:
    if code < 0:
        try:
            return f"signal {signal.Signals(-code).name}"
        except ValueError:
            return f"signal {-code}"
    return f"exit status {code}"
