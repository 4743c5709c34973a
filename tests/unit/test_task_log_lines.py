"""An attempt's log lines as the local runtime sends them to CloudWatch Logs: cut, batched and
read back as Lambda's (the sends and reads on the emulator are in tests/functional/test_task_logs.py)."""

from __future__ import annotations

import io
import os
import re
import threading
import time
from typing import Any

import pytest

from devtools.runtime import logs as lambda_logs
from devtools.runtime.logs import LogShipper, SandboxOutput


@pytest.mark.unit
def test_a_line_over_256_kb_is_cut_on_a_character_boundary_and_a_short_one_kept() -> None:
    limit = lambda_logs.MAX_EVENT_BYTES - lambda_logs.EVENT_OVERHEAD_BYTES
    assert lambda_logs.truncate("short é") == "short é"
    long = "é" * lambda_logs.MAX_EVENT_BYTES  # two bytes each
    cut = lambda_logs.truncate(long)
    assert len(cut.encode()) <= limit and len(cut.encode()) >= limit - 1
    assert set(cut) == {"é"}


@pytest.mark.unit
def test_the_platform_lines_read_as_lambdas() -> None:
    assert lambda_logs.start_line("r1") == "START RequestId: r1 Version: $LATEST"
    assert lambda_logs.end_line("r1") == "END RequestId: r1"
    warm = lambda_logs.report_line("r1", 12.01, 512, 80, None)
    assert warm == (
        "REPORT RequestId: r1\tDuration: 12.01 ms\tBilled Duration: 13 ms\t"
        "Memory Size: 512 MB\tMax Memory Used: 80 MB\t"
    )
    cold = lambda_logs.report_line("r2", 3.0, 256, 60, 321.456)
    assert cold.endswith("\tMax Memory Used: 60 MB\tInit Duration: 321.46 ms\t") and "Billed Duration: 3 ms" in cold
    assert re.fullmatch(r"\d{4}/\d\d/\d\d/\[\$LATEST\][0-9a-f]{32}", lambda_logs.stream_name())


class _Logs:
    """CloudWatch Logs in memory: what PutLogEvents received, per call."""

    class exceptions:  # noqa: N801 - the shape of a boto3 client
        class ResourceAlreadyExistsException(Exception):
            pass

    def __init__(self) -> None:
        self.calls: list[tuple[str, str, list[dict[str, Any]]]] = []
        self.created: list[tuple[str, str | None]] = []

    def create_log_group(self, logGroupName: str) -> None:  # noqa: N803
        self.created.append((logGroupName, None))

    def create_log_stream(self, logGroupName: str, logStreamName: str) -> None:  # noqa: N803
        self.created.append((logGroupName, logStreamName))

    def put_log_events(self, logGroupName: str, logStreamName: str, logEvents: list[dict[str, Any]]) -> None:  # noqa: N803
        self.calls.append((logGroupName, logStreamName, logEvents))


@pytest.mark.unit
def test_lines_are_sent_in_bounded_batches_one_stream_each_in_order() -> None:
    logs = _Logs()
    shipper = LogShipper(logs, flush_seconds=0.01)
    count = lambda_logs.MAX_BATCH_EVENTS * 2 + 5
    for i in range(count):
        shipper.put("/aws/lambda/f", "s1" if i % 3 else "s2", f"line {i}")
    shipper.close()
    assert all(len(events) <= lambda_logs.MAX_BATCH_EVENTS for _, _, events in logs.calls)
    for stream in ("s1", "s2"):
        sent = [e for _, s, events in logs.calls if s == stream for e in events]
        expected = [f"line {i}" for i in range(count) if ("s1" if i % 3 else "s2") == stream]
        assert [e["message"] for e in sent] == expected
        stamps = [e["timestamp"] for e in sent]
        assert stamps == sorted(stamps)
    assert ("/aws/lambda/f", None) in logs.created and ("/aws/lambda/f", "s2") in logs.created


@pytest.mark.unit
def test_a_sandboxs_output_is_read_line_by_line_with_long_lines_cut_and_its_end_marked() -> None:
    logs = _Logs()
    shipper = LogShipper(logs, flush_seconds=0.01)
    output = SandboxOutput(shipper, "/aws/lambda/f", echo=io.StringIO())
    read, write = os.pipe()
    output.attach(os.fdopen(read, "rb"))
    huge = b"x" * (lambda_logs.MAX_EVENT_BYTES * 2)

    def write_all() -> None:
        os.write(write, b"first\n" + huge + b"\nafter\nno newline" + f"{lambda_logs.END_MARKER}r1\n".encode())
        os.close(write)

    writer = threading.Thread(target=write_all)
    writer.start()
    started = time.monotonic()
    output.settled("r1", timeout=10)
    assert time.monotonic() - started < 10
    writer.join()
    shipper.close()
    messages = [e["message"] for _, _, events in logs.calls for e in events]
    assert messages[0] == "first" and messages[2:] == ["after", "no newline"], messages[2:]
    assert len(messages[1]) == lambda_logs.MAX_EVENT_BYTES - lambda_logs.EVENT_OVERHEAD_BYTES
