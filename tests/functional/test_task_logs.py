"""An attempt's log lines: the local runtime sends its sandboxes' output to CloudWatch Logs as
Lambda does, and the dashboard reads them back with FilterLogEvents (issue 23, item 2).

The integration tests run the runner as a real process (sandboxes) against the emulator and
read the lines through the dashboard's API over HTTP; the unit tests cover the formatting,
truncation and batching of the lines.
"""

from __future__ import annotations

import re
import uuid
from collections.abc import Iterator
from typing import Any

import pytest
from dashboard_support import Signed, sign_in
from helpers import eventually, final_record
from runtime_support import RunnerProcess, private_runner, send_task


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
