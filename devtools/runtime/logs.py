"""The local runtime's function logs, delivered to CloudWatch Logs as Lambda delivers them.

Each sandbox writes its stdout and stderr (one pipe, so their order holds) to a log stream of
its own, `YYYY/MM/DD/[$LATEST]<32 hex>`, in the group `/aws/lambda/<function name>`; around
each invocation come Lambda's platform lines: `START RequestId: … Version: $LATEST`, then the
function's lines, `END RequestId: …` and `REPORT RequestId: …` with durations and memory (and
`Init Duration` on a cold start). The dashboard then reads a task's lines with
FilterLogEvents, the same call whether the lines came from here or from Lambda.

Why hand-written: boto3's PutLogEvents is the transport, but nothing kept (watchtower is a
`logging.Handler` for the process's own records) batches another process's raw output per
stream. Delivery is one thread per runner: `put` never blocks an invocation (a bounded
buffer; lines past it are counted and reported as dropped), batches are bounded (events and
bytes, as PutLogEvents' limits), and a stream's events go in order (one sender, and a batch
that fails is sent again before anything after it).
"""

from __future__ import annotations

import logging
import sys
import threading
import time
import uuid
from collections import deque
from dataclasses import dataclass
from typing import IO, Any

log = logging.getLogger("devtools.runtime.logs")

MAX_EVENT_BYTES = 256 * 1024  # Lambda truncates a longer line (CloudWatch's event limit, with its overhead)
EVENT_OVERHEAD_BYTES = 26  # PutLogEvents counts each event's message bytes plus 26
MAX_BATCH_EVENTS = 1000
MAX_BATCH_BYTES = 1_048_576  # PutLogEvents' limit
MAX_PENDING_EVENTS = 50_000  # the buffer: past it, lines are dropped (and counted), never waited for
FLUSH_SECONDS = 0.2
_REFUSED = ("InvalidParameterException", "DataAlreadyAcceptedException", "UnrecognizedClientException")
END_MARKER = "\x00lambda-invocation-end "  # written by the sandbox worker after an invocation's output


def log_group(function_name: str) -> str:
    return f"/aws/lambda/{function_name}"


def stream_name(now: float | None = None) -> str:
    """A new sandbox's stream, named as Lambda names it: the day and `[$LATEST]` with 32 hex digits."""
    day = time.strftime("%Y/%m/%d", time.gmtime(time.time() if now is None else now))
    return f"{day}/[$LATEST]{uuid.uuid4().hex}"


def truncate(message: str) -> str:
    """A line as CloudWatch keeps it: at most MAX_EVENT_BYTES (with the event's overhead) of UTF-8,
    cut on a character boundary."""
    data = message.encode("utf-8", errors="replace")
    limit = MAX_EVENT_BYTES - EVENT_OVERHEAD_BYTES
    if len(data) <= limit:
        return message
    return data[:limit].decode("utf-8", errors="ignore")


def start_line(request_id: str) -> str:
    return f"START RequestId: {request_id} Version: $LATEST"


def end_line(request_id: str) -> str:
    return f"END RequestId: {request_id}"


def report_line(
    request_id: str, duration_ms: float, memory_mb: int, max_memory_mb: int | None, init_ms: float | None
) -> str:
    """Lambda's REPORT line (tab-separated, as Lambda writes it; billed to the next whole millisecond)."""
    parts = [
        f"REPORT RequestId: {request_id}",
        f"Duration: {duration_ms:.2f} ms",
        f"Billed Duration: {max(1, int(-(-duration_ms // 1)))} ms",
        f"Memory Size: {memory_mb} MB",
        f"Max Memory Used: {max_memory_mb if max_memory_mb is not None else 0} MB",
    ]
    if init_ms is not None:
        parts.append(f"Init Duration: {init_ms:.2f} ms")
    return "\t".join(parts) + "\t"


@dataclass(frozen=True)
class Event:
    group: str
    stream: str
    timestamp: int  # ms since the epoch
    message: str


class LogShipper:
    """Sends log events to CloudWatch Logs from one thread, in bounded batches, per stream in order."""

    def __init__(self, logs_client: Any, flush_seconds: float = FLUSH_SECONDS) -> None:
        self._client = logs_client
        self._flush_seconds = flush_seconds
        self._pending: deque[Event] = deque()
        self._lock = threading.Condition()
        self._dropped = 0
        self._last_ms: dict[tuple[str, str], int] = {}
        self._created: set[tuple[str, str | None]] = set()
        self._closed = False
        self._thread = threading.Thread(target=self._run, name="lambda-logs", daemon=True)
        self._thread.start()

    def put(self, group: str, stream: str, message: str) -> None:
        """Queue one line (never blocks on CloudWatch: a full buffer drops the line and counts it)."""
        with self._lock:
            if len(self._pending) >= MAX_PENDING_EVENTS:
                self._dropped += 1
                return
            key = (group, stream)
            # PutLogEvents wants a batch in time order: a line never goes before the one queued ahead of it.
            now = max(int(time.time() * 1000), self._last_ms.get(key, 0))
            self._last_ms[key] = now
            self._pending.append(Event(group, stream, now, truncate(message)))
            if len(self._pending) >= MAX_BATCH_EVENTS:
                self._lock.notify()

    def flush(self, timeout: float = 5.0) -> bool:
        """Wait until everything queued so far is sent (True) or `timeout` passes (False)."""
        deadline = time.monotonic() + timeout
        with self._lock:
            self._lock.notify()
            while self._pending and time.monotonic() < deadline:
                self._lock.wait(0.05)
            return not self._pending

    def close(self, timeout: float = 5.0) -> None:
        self.flush(timeout)
        with self._lock:
            self._closed = True
            self._lock.notify()
        self._thread.join(timeout)

    def _run(self) -> None:
        while True:
            with self._lock:
                if not self._pending and not self._closed:
                    self._lock.wait(self._flush_seconds)
                if self._closed and not self._pending:
                    return
                batch = self._next_batch()
                dropped, self._dropped = self._dropped, 0
            if dropped:
                log.warning("%d log lines dropped: CloudWatch Logs did not keep up", dropped)
            if not batch:
                continue
            try:
                self._send(batch)
            except Exception as exc:  # noqa: BLE001 - sent again, unless CloudWatch refuses it for good
                code = getattr(exc, "response", {}).get("Error", {}).get("Code", "")
                if code == "ResourceNotFoundException":  # the emulator restarted without its logs
                    self._created.clear()
                if code in _REFUSED:
                    log.warning("CloudWatch Logs refused %d log lines: %s", len(batch), exc)
                else:
                    log.warning("could not send %d log lines (%s); trying again", len(batch), exc)
                    time.sleep(1.0)
                    continue
            with self._lock:
                for _ in batch:
                    self._pending.popleft()
                self._lock.notify_all()

    def _next_batch(self) -> list[Event]:
        """The oldest events of the first pending stream, up to the batch limits (left queued until sent)."""
        if not self._pending:
            return []
        first = self._pending[0]
        batch: list[Event] = []
        size = 0
        for event in self._pending:
            if (event.group, event.stream) != (first.group, first.stream):
                break  # a batch is one stream's; the next stream's events wait their turn, in order
            cost = len(event.message.encode("utf-8", errors="replace")) + EVENT_OVERHEAD_BYTES
            if len(batch) >= MAX_BATCH_EVENTS or size + cost > MAX_BATCH_BYTES:
                break
            batch.append(event)
            size += cost
        return batch

    def _send(self, batch: list[Event]) -> None:
        group, stream = batch[0].group, batch[0].stream
        self._ensure(group, None)
        self._ensure(group, stream)
        self._client.put_log_events(
            logGroupName=group,
            logStreamName=stream,
            logEvents=[{"timestamp": e.timestamp, "message": e.message} for e in batch],
        )

    def _ensure(self, group: str, stream: str | None) -> None:
        if (group, stream) in self._created:
            return
        exists = self._client.exceptions.ResourceAlreadyExistsException
        try:
            if stream is None:
                self._client.create_log_group(logGroupName=group)
            else:
                self._client.create_log_stream(logGroupName=group, logStreamName=stream)
        except exists:
            pass
        self._created.add((group, stream))


class SandboxOutput:
    """One sandbox's stdout+stderr: echoed to the runner's stderr and sent to its log stream.

    The worker writes END_MARKER after each invocation's output; `settled` waits for it (or for
    the pipe's end when the sandbox died), so END and REPORT follow the invocation's last line.
    """

    def __init__(self, shipper: LogShipper, group: str, echo: IO[str] | None = None) -> None:
        self.shipper, self.group, self.stream = shipper, group, stream_name()
        self._echo = echo if echo is not None else sys.stderr
        self._ended: set[str] = set()
        self._closed = False
        self._cond = threading.Condition()

    def attach(self, pipe: IO[bytes]) -> None:
        """Read the sandbox's output from `pipe` until it ends (a thread of its own)."""
        threading.Thread(target=self._read, args=(pipe,), name=f"output-{self.stream[-8:]}", daemon=True).start()

    def put(self, message: str) -> None:
        self.shipper.put(self.group, self.stream, message)

    def settled(self, request_id: str, timeout: float = 2.0) -> None:
        """Wait (bounded) until the invocation's output is read: its end marker, or the pipe's end."""
        deadline = time.monotonic() + timeout
        with self._cond:
            while request_id not in self._ended and not self._closed:
                left = deadline - time.monotonic()
                if left <= 0:
                    return
                self._cond.wait(left)
            self._ended.discard(request_id)

    def _read(self, pipe: IO[bytes]) -> None:
        skipping = False  # the rest of a line already cut at MAX_EVENT_BYTES
        try:
            while True:
                raw = pipe.readline(MAX_EVENT_BYTES)
                if not raw:
                    break
                complete = raw.endswith(b"\n")
                if skipping:
                    skipping = not complete
                    continue
                skipping = not complete and len(raw) >= MAX_EVENT_BYTES
                line = raw.decode("utf-8", errors="replace").rstrip("\r\n")
                line, marker, ended = line.partition(END_MARKER)  # after a last line with no newline, too
                if line or not marker:
                    self._keep(line)
                if marker:
                    with self._cond:
                        self._ended.add(ended.strip())
                        self._cond.notify_all()
        finally:
            pipe.close()  # at its end nothing else reads it (the sandbox's Popen never closes it)
            with self._cond:
                self._closed = True
                self._cond.notify_all()

    def _keep(self, line: str) -> None:
        """One line of the function's: to its stream, and to the runner's terminal as before."""
        self.put(line)
        try:
            self._echo.write(line + "\n")
            self._echo.flush()
        except (OSError, ValueError):
            pass
