"""Local Lambda execution environments: one worker process per concurrency slot.

Why processes of our own (`subprocess` + a socket from `multiprocessing.Pipe`) rather than
`multiprocessing.Process`: a sandbox must start as a fresh interpreter that imports the app
(fork would inherit the runner's imports, clients and threads, so there would be no cold
start and module state would leak between functions), it must be killable at its deadline
without harming the runner, and its events and answers must be JSON, as Lambda's are. A
`python -m devtools.sandbox_worker` child with an inherited socket and length-prefixed JSON
gives exactly that; multiprocessing's spawn mode would add pickling of arbitrary objects
and hide the child's command line and environment, which is the function's configuration.

Limits, checked by the runner side while it waits for the answer:
- timeout: at the function's deadline the process is killed (SIGKILL) and the invocation
  is a timeout error, logged like Lambda's `Task timed out after N.NN seconds`;
- memory: the process's resident set size is sampled every `WATCH_SECONDS` and its peak
  (`ru_maxrss`) is read after each invocation; above `memory_mb` the process is killed and
  the invocation is an out-of-memory error. RSS, not RLIMIT_AS, is the measure because a
  Python process's virtual size is no guide to its use: importing the app costs 58 MB of
  virtual memory for 52 MB resident, but ten threads add 750 MB of virtual memory (stacks
  and malloc arenas) and no resident memory. RLIMIT_AS is still set, at `memory_mb` +
  `ADDRESS_SPACE_MARGIN_MB`, only as a backstop against one huge allocation.
A crash (segfault, `os._exit`, a kill from outside) fails that invocation only; the next
invocation gets a fresh sandbox (a cold start).
"""

from __future__ import annotations

import json
import logging
import os
import subprocess
import sys
import threading
import time
import uuid
from dataclasses import dataclass, field
from multiprocessing import Pipe
from multiprocessing.connection import Connection
from typing import Any, Literal

from devtools.lambda_logs import LogShipper, SandboxOutput, end_line, report_line, start_line
from devtools.stage import ROOT

log = logging.getLogger("devtools.sandbox")

WATCH_SECONDS = 0.025
INIT_TIMEOUT_SECONDS = 10.0  # Lambda's limit for the init phase of an on-demand function
ADDRESS_SPACE_MARGIN_MB = 4096
_PAGE = os.sysconf("SC_PAGE_SIZE")

Status = Literal["ok", "error", "timeout", "crash", "oom"]


@dataclass(frozen=True)
class FunctionSpec:
    """What a sandbox runs: the handler, its name and its limits."""

    name: str
    app_module: str
    handler: str
    timeout_seconds: float
    memory_mb: int
    env: dict[str, str] = field(default_factory=dict)
    log_group: str | None = None  # where its output goes (`/aws/lambda/<function name>`); None: the runner's stderr


@dataclass
class Invocation:
    """The outcome of one invocation, as the event source sees it."""

    status: Status
    request_id: str
    duration_ms: float
    result: Any = None
    error_type: str | None = None
    error_message: str | None = None
    max_memory_mb: int | None = None
    init_ms: float | None = None

    @property
    def failed(self) -> bool:
        """Lambda reports a function error (the event source keeps the batch)."""
        return self.status != "ok"


def report(spec: FunctionSpec, invocation: Invocation) -> None:
    """Log the invocation as Lambda's REPORT line (and its timeout or crash line)."""
    if invocation.status == "timeout":
        log.error(
            "%s %s Task timed out after %.2f seconds",
            spec.name,
            invocation.request_id,
            invocation.duration_ms / 1000,
        )
    elif invocation.status in ("crash", "oom"):
        log.error("%s %s %s: %s", spec.name, invocation.request_id, invocation.error_type, invocation.error_message)
    init = f" Init Duration: {invocation.init_ms:.2f} ms" if invocation.init_ms is not None else ""
    used = f" Max Memory Used: {invocation.max_memory_mb} MB" if invocation.max_memory_mb is not None else ""
    log.info(
        "%s REPORT RequestId: %s Duration: %.2f ms Memory Size: %d MB%s%s Status: %s",
        spec.name,
        invocation.request_id,
        invocation.duration_ms,
        spec.memory_mb,
        used,
        init,
        invocation.status,
    )


def _rss_bytes(pid: int) -> int | None:
    try:
        with open(f"/proc/{pid}/statm") as statm:
            return int(statm.read().split()[1]) * _PAGE
    except (OSError, ValueError, IndexError):
        return None


class Sandbox:
    """One execution environment: a worker process that serves invocations one at a time."""

    def __init__(self, spec: FunctionSpec, shipper: LogShipper | None = None) -> None:
        self.spec = spec
        self.shipper = shipper
        self.output: SandboxOutput | None = None
        self._started: str | None = None  # the request id whose START line is written
        self.proc: subprocess.Popen[bytes] | None = None
        self._conn: Connection | None = None
        self.invocations = 0
        self.initialized = False

    @property
    def alive(self) -> bool:
        return self.proc is not None and self.proc.poll() is None

    @property
    def pid(self) -> int | None:
        return self.proc.pid if self.proc else None

    def _spawn(self) -> None:
        """Start the worker process (it imports the app: the cold start)."""
        parent, child = Pipe(duplex=True)
        env = {
            **os.environ,
            **self.spec.env,
            "AWS_LAMBDA_FUNCTION_NAME": self.spec.name,
            "AWS_LAMBDA_FUNCTION_MEMORY_SIZE": str(self.spec.memory_mb),
            "AWS_LAMBDA_FUNCTION_VERSION": "$LATEST",
        }
        command = [
            sys.executable,
            "-m",
            "devtools.sandbox_worker",
            "--fd",
            str(child.fileno()),
            "--app",
            self.spec.app_module,
            "--handler",
            self.spec.handler,
            "--function-name",
            self.spec.name,
            "--memory-mb",
            str(self.spec.memory_mb),
            "--address-space-mb",
            str(self.spec.memory_mb + ADDRESS_SPACE_MARGIN_MB),
        ]
        if self.shipper is None or self.spec.log_group is None:
            self.proc = subprocess.Popen(command, cwd=ROOT, env=env, pass_fds=(child.fileno(),))
        else:  # one pipe for stdout and stderr, unbuffered: the lines keep the order they were written in
            self.output = SandboxOutput(self.shipper, self.spec.log_group)
            env |= {
                "PYTHONUNBUFFERED": "1",
                "AWS_LAMBDA_LOG_GROUP_NAME": self.output.group,
                "AWS_LAMBDA_LOG_STREAM_NAME": self.output.stream,
            }
            self.proc = subprocess.Popen(
                command,
                cwd=ROOT,
                env=env,
                pass_fds=(child.fileno(),),
                stdout=subprocess.PIPE,
                stderr=subprocess.STDOUT,
            )
            assert self.proc.stdout is not None
            self.output.attach(self.proc.stdout)
        child.close()
        self._conn = parent

    def _wait_ready(self, seconds: float) -> dict[str, Any] | None:
        """The init answer, {} if none came within `seconds`, or None if the process died."""
        assert self._conn is not None
        try:
            if not self._conn.poll(max(0.0, seconds)):
                return {}
            return dict(json.loads(self._conn.recv_bytes()))
        except (EOFError, OSError):
            return None

    def invoke(self, event: dict[str, Any]) -> Invocation:
        """Run one invocation within the function's timeout and memory; its log lines go to the
        sandbox's stream between START and END/REPORT, as Lambda's do."""
        self._started = None
        invocation = self._run(event)
        self._log_end(invocation)
        return invocation

    def _log_start(self, request_id: str) -> None:
        if self.output is not None:
            self.output.put(start_line(request_id))
        self._started = request_id

    def _log_end(self, invocation: Invocation) -> None:
        output = self.output
        if output is None:
            return
        request_id = invocation.request_id
        if self._started != request_id:  # it ended before its invocation phase (a failed init)
            output.put(start_line(request_id))
        output.settled(request_id)  # the worker's end marker, or the pipe's end if it was killed
        if invocation.status == "timeout":
            now = time.time()
            stamp = f"{time.strftime('%Y-%m-%dT%H:%M:%S', time.gmtime(now))}.{int(now * 1000) % 1000:03d}Z"
            output.put(f"{stamp} {request_id} {invocation.error_message}")
        elif invocation.status in ("crash", "oom"):
            output.put(f"RequestId: {request_id} Error: {invocation.error_message}\n{invocation.error_type}")
        output.put(end_line(request_id))
        output.put(
            report_line(
                request_id, invocation.duration_ms, self.spec.memory_mb, invocation.max_memory_mb, invocation.init_ms
            )
        )

    def _run(self, event: dict[str, Any]) -> Invocation:
        request_id = str(uuid.uuid4())
        init_ms: float | None = None
        started = time.monotonic()
        deadline = started + self.spec.timeout_seconds
        if self.proc is None:
            self._spawn()
            ready = self._wait_ready(INIT_TIMEOUT_SECONDS)
            slow_init = ready == {}
            if slow_init:  # Lambda retries a slow init inside the invocation, under the function's timeout
                started = time.monotonic()
                deadline = started + self.spec.timeout_seconds
                ready = self._wait_ready(self.spec.timeout_seconds)
                if ready == {}:
                    return self._timed_out(request_id, started, None)
            if ready is None or ready.get("type") != "ready":
                return self._died(request_id, started, ready)
            init_ms = float(ready["init_ms"])
            self.initialized = True
            if not slow_init:  # the invocation starts after a normal init
                started = time.monotonic()
                deadline = started + self.spec.timeout_seconds
        assert self._conn is not None and self.proc is not None
        remaining_ms = int((deadline - time.monotonic()) * 1000)
        self._log_start(request_id)
        try:
            self._conn.send_bytes(
                json.dumps({"event": event, "request_id": request_id, "remaining_ms": remaining_ms}).encode()
            )
        except OSError:
            return self._died(request_id, started, None, init_ms)
        limit = self.spec.memory_mb * 1024 * 1024
        self.invocations += 1
        while True:
            left = deadline - time.monotonic()
            if left <= 0:
                return self._timed_out(request_id, started, init_ms)
            try:
                answered = self._conn.poll(min(left, WATCH_SECONDS))
                answer = json.loads(self._conn.recv_bytes()) if answered else None
            except (EOFError, OSError):
                return self._died(request_id, started, None, init_ms)
            if answer is not None:
                return self._answered(answer, request_id, started, init_ms)
            rss = _rss_bytes(self.proc.pid)
            if rss is not None and rss > limit:
                return self._out_of_memory(request_id, started, init_ms, rss)

    def _answered(self, answer: dict[str, Any], request_id: str, started: float, init_ms: float | None) -> Invocation:
        duration = (time.monotonic() - started) * 1000
        peak = int(answer.get("max_rss_kb", 0)) * 1024
        if peak > self.spec.memory_mb * 1024 * 1024:  # a peak between two samples
            return self._out_of_memory(request_id, started, init_ms, peak)
        used = peak // (1024 * 1024)
        if answer.get("type") == "result":
            return Invocation("ok", request_id, duration, answer.get("result"), max_memory_mb=used, init_ms=init_ms)
        return Invocation(
            "error",
            request_id,
            duration,
            error_type=answer.get("errorType"),
            error_message=answer.get("errorMessage"),
            max_memory_mb=used,
            init_ms=init_ms,
        )

    def _ended(
        self,
        status: Status,
        request_id: str,
        started: float,
        init_ms: float | None,
        error_type: str | None,
        error_message: str | None,
        max_memory_mb: int | None = None,
    ) -> Invocation:
        """Kill the sandbox (it is never reused after a failure) and report how the invocation ended."""
        self.kill()
        return Invocation(
            status,
            request_id,
            (time.monotonic() - started) * 1000,
            error_type=error_type,
            error_message=error_message,
            max_memory_mb=max_memory_mb,
            init_ms=init_ms,
        )

    def _timed_out(self, request_id: str, started: float, init_ms: float | None) -> Invocation:
        message = f"Task timed out after {self.spec.timeout_seconds:.2f} seconds"
        return self._ended("timeout", request_id, started, init_ms, "Sandbox.Timedout", message)

    def _out_of_memory(self, request_id: str, started: float, init_ms: float | None, rss: int) -> Invocation:
        message = (
            f"Runtime exited with error: memory use {rss // (1024 * 1024)} MB exceeded the "
            f"function's {self.spec.memory_mb} MB"
        )
        return self._ended(
            "oom", request_id, started, init_ms, "Runtime.OutOfMemory", message, max_memory_mb=self.spec.memory_mb
        )

    def _died(
        self, request_id: str, started: float, answer: dict[str, Any] | None, init_ms: float | None = None
    ) -> Invocation:
        """The process ended (or failed its init) before answering."""
        if answer is not None and answer.get("type") == "error":  # init error: import failed or timed out
            return self._ended(
                "error", request_id, started, init_ms, answer.get("errorType"), answer.get("errorMessage")
            )
        code = self.proc.wait() if self.proc else None
        how = f"signal: {_signal_name(-code)}" if code is not None and code < 0 else f"exit status {code}"
        return self._ended(
            "crash", request_id, started, init_ms, "Runtime.ExitError", f"Runtime exited with error: {how}"
        )

    def kill(self) -> None:
        """End the process now (it is never reused after this)."""
        if self.proc is not None and self.proc.poll() is None:
            self.proc.kill()
        if self.proc is not None:
            self.proc.wait()
        if self._conn is not None:
            self._conn.close()
            self._conn = None

    def stop(self) -> None:
        """End an idle sandbox: closing its connection makes the worker loop return."""
        if self._conn is not None:
            self._conn.close()
            self._conn = None
        if self.proc is not None:
            try:
                self.proc.wait(timeout=2)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()


def _signal_name(number: int) -> str:
    import signal

    try:
        return signal.Signals(number).name.removeprefix("SIG").lower()
    except ValueError:
        return str(number)


# Lambda reclaims an execution environment that has sat idle for a while (the time is not
# published: minutes to hours); the next invocation is a cold start again. A pool that kept
# its sandboxes forever would hide those cold starts and hold their memory.
IDLE_RECLAIM_SECONDS = 600.0


class SandboxPool:
    """The execution environments of one function: warm ones are reused, dead ones replaced,
    idle ones reclaimed after `idle_seconds`."""

    def __init__(
        self, spec: FunctionSpec, idle_seconds: float = IDLE_RECLAIM_SECONDS, shipper: LogShipper | None = None
    ) -> None:
        self.spec = spec
        self.idle_seconds = idle_seconds
        self.shipper = shipper
        self._idle: list[Sandbox] = []  # the most recently used last: it is reused first, as on Lambda
        self._idle_since: dict[Sandbox, float] = {}
        self._busy: set[Sandbox] = set()
        self._lock = threading.Lock()
        self._closed = False
        self._stopping = threading.Event()
        threading.Thread(target=self._reap_forever, name=f"reaper-{spec.name}", daemon=True).start()

    def invoke(self, event: dict[str, Any]) -> Invocation:
        """Invoke the function in a warm sandbox, or a new one (a cold start)."""
        with self._lock:
            sandbox = self._idle.pop() if self._idle else Sandbox(self.spec, self.shipper)
            self._idle_since.pop(sandbox, None)
            self._busy.add(sandbox)
        invocation = sandbox.invoke(event)
        report(self.spec, invocation)
        with self._lock:
            self._busy.discard(sandbox)
            if sandbox.alive and not self._closed:
                self._idle.append(sandbox)
                self._idle_since[sandbox] = time.monotonic()
            else:
                sandbox.kill()
        if invocation.status == "crash":
            log.warning("%s: sandbox %s died; the next invocation gets a fresh one", self.spec.name, sandbox.pid)
        return invocation

    @property
    def warm(self) -> int:
        """Sandboxes that have finished their init and are alive (idle or busy)."""
        with self._lock:
            return sum(1 for s in (*self._idle, *self._busy) if s.initialized and s.alive)

    def reap(self) -> int:
        """Stop the sandboxes idle for longer than `idle_seconds`; returns how many."""
        now = time.monotonic()
        with self._lock:
            expired = [s for s in self._idle if now - self._idle_since.get(s, now) > self.idle_seconds]
            for sandbox in expired:
                self._idle.remove(sandbox)
                self._idle_since.pop(sandbox, None)
        for sandbox in expired:
            log.info("%s: sandbox %s reclaimed after %.0f s idle", self.spec.name, sandbox.pid, self.idle_seconds)
            sandbox.stop()
        return len(expired)

    def _reap_forever(self) -> None:
        while not self._stopping.wait(min(30.0, max(0.2, self.idle_seconds / 4))):
            self.reap()

    def close(self) -> None:
        """Stop every idle sandbox; busy ones are killed when their invocation returns."""
        self._stopping.set()
        with self._lock:
            self._closed = True
            idle, self._idle = self._idle, []
            self._idle_since.clear()
        for sandbox in idle:
            sandbox.stop()
