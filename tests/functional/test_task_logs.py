"""An attempt's log lines: the local runtime sends its sandboxes' output to CloudWatch Logs as
Lambda does, and the dashboard reads them back with FilterLogEvents (issue 23, item 2).

The integration tests run the runner as a real process (sandboxes) against the emulator and
read the lines through the dashboard's API over HTTP; the unit tests cover the formatting,
truncation and batching of the lines.
"""

from __future__ import annotations

import io
import os
import re
import threading
import time
import uuid
from collections.abc import Iterator
from typing import Any

import pytest
from dashboard_support import Signed, sign_in
from helpers import eventually, final_record
from runtime_support import RunnerProcess, private_runner, send_task

from devtools.runtime import logs as lambda_logs
from devtools.runtime.logs import LogShipper, SandboxOutput


@pytest.fixture
def runner(gateway_url: str) -> Iterator[tuple[RunnerProcess, dict[str, str]]]:
    with private_runner("--only", "default_worker") as started:
        yield started


@pytest.fixture(scope="module")
def admin(gateway_url: str, keys: dict[str, str]) -> Signed:
    return sign_in(gateway_url, keys["admin"])


def logs_of(admin: Signed, task_id: str, attempt: int = 1) -> dict[str, Any]:
    response = admin.get(f"/dashboard/api/tasks/{task_id}/logs?attempt={attempt}")
    assert response.status_code == 200, response.text
    return dict(response.json())


def wait_for_line(admin: Signed, task_id: str, text: str) -> dict[str, Any]:
    def found() -> dict[str, Any] | None:
        # 404 until the attempt is kept: the worker writes it just after the record's final status.
        response = admin.get(f"/dashboard/api/tasks/{task_id}/logs?attempt=1")
        if response.status_code == 404 and "no attempt 1 kept" in response.text:
            return None
        assert response.status_code == 200, response.text
        got = dict(response.json())
        return got if any(text in line["message"] for line in got["lines"]) else None

    return dict(eventually(found, timeout=30, what=f"the line {text!r} of task {task_id}"))


def test_the_dashboard_shows_the_line_a_task_logged_and_only_its_invocations_lines(
    api: Any, admin: Signed, runner: tuple[RunnerProcess, dict[str, str]]
) -> None:
    _process, queues = runner
    token = uuid.uuid4().hex[:8]
    first = send_task(queues["DEFAULT_QUEUE_NAME"], "tests.runtime.say", f"first line {token}")
    assert final_record(api, first)["status"] == "SUCCESS"
    second = send_task(queues["DEFAULT_QUEUE_NAME"], "tests.runtime.say", f"second line {token}")
    assert final_record(api, second)["status"] == "SUCCESS"

    got = wait_for_line(admin, first, f"first line {token}")
    assert got["available"] is True and got["truncated"] is False
    request_id = got["invocation"]
    assert got["log_group"].startswith("/aws/lambda/") and got["log_group"].endswith("-default_worker")
    messages = [line["message"] for line in got["lines"]]
    assert not any(f"second line {token}" in m for m in messages), messages
    assert all(request_id in m for m in messages)  # every line is this invocation's
    # Lambda's platform lines frame the invocation: START first, END and REPORT once it is done.
    messages = eventually(
        lambda: (found := _messages(admin, first)) and found[-1].startswith("REPORT") and found, what="REPORT"
    )
    assert messages[0] == f"START RequestId: {request_id} Version: $LATEST"
    assert messages[-2] == f"END RequestId: {request_id}"
    assert re.fullmatch(
        rf"REPORT RequestId: {request_id}\tDuration: \d+\.\d\d ms\tBilled Duration: \d+ ms\t"
        r"Memory Size: \d+ MB\tMax Memory Used: \d+ MB\t(Init Duration: \d+\.\d\d ms\t)?",
        messages[-1],
    ), messages[-1]
    assert got["insights"]["insights_query"].count(request_id) == 1

    other = wait_for_line(admin, second, f"second line {token}")
    assert other["invocation"] != request_id
    assert not any(f"first line {token}" in line["message"] for line in other["lines"])


def _messages(admin: Signed, task_id: str) -> list[str]:
    return [line["message"] for line in logs_of(admin, task_id)["lines"]]


def test_an_attempt_that_is_not_kept_is_404_and_a_bad_number_422(admin: Signed) -> None:
    missing = admin.get(f"/dashboard/api/tasks/{uuid.uuid4()}/logs?attempt=1")
    assert missing.status_code == 404 and missing.json()["error"] == "NotFound"
    for bad in ("", "?attempt=0", "?attempt=x", "?attempt=1001"):
        response = admin.get(f"/dashboard/api/tasks/{uuid.uuid4()}/logs{bad}")
        assert response.status_code == 422, (bad, response.text)
        assert set(response.json()) == {"error", "message", "fields"}


# ---------------------------------------------------------------- units: the lines and their batching


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
