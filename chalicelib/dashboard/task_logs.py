"""One attempt's log lines, read from CloudWatch Logs: the same call locally and on AWS.

Each attempt keeps the Lambda request id of its invocation and the context's log group and
stream (tasks/history.py). Lambda writes START/END/REPORT lines with that id, and every
Powertools line of the invocation carries it as `function_request_id` (tasks/worker.py), so
one FilterLogEvents with the id in quotes over the group, in the attempt's time window, finds
them (not only in the stream kept: MiniStack writes a stream per invocation, not the context's
one); under `make run` the local runtime delivers its sandboxes' output the same way
(devtools/lambda_logs.py). Lines that name another task (a batch holds several) are left out.

Bounded: at most MAX_PAGES pages of PAGE_EVENTS events, MAX_LINES lines of at most
MAX_LINE_CHARS characters, MAX_BYTES in all; `truncated` says when there was more, and the
Logs Insights query beside the lines finds the rest.
"""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from typing import Any, TypedDict

from botocore.exceptions import ClientError

from chalicelib.platform.aws import client
from chalicelib.platform.config import get_settings
from chalicelib.platform.errors import NotFound, ValidationFailed
from chalicelib.tasks import history

MAX_PAGES = 2
PAGE_EVENTS = 100
MAX_LINES = 200
MAX_LINE_CHARS = 4096
MAX_BYTES = 256 * 1024
MARGIN = timedelta(seconds=60)  # clocks and batching: the invocation starts before the attempt, logs arrive after


class LogLine(TypedDict):
    timestamp: str
    message: str


def parse_attempt(value: str | None) -> int:
    if value is None or not value.isdigit() or not 1 <= int(value) <= 1000:
        raise ValidationFailed("invalid attempt", [{"field": "attempt", "message": "an attempt number, 1 to 1000"}])
    return int(value)


def insights(task_id: str, request_id: str | None) -> dict[str, str]:
    """A Logs Insights query for the same lines (and the console page to run it in)."""
    settings = get_settings()
    term = request_id or task_id
    return {
        "insights_query": f'fields @timestamp, @message | filter @message like "{term}" | sort @timestamp asc',
        "console_url": (
            f"https://{settings.region}.console.aws.amazon.com/cloudwatch/home?region={settings.region}"
            "#logsV2:logs-insights"
        ),
    }


def attempt_logs(task_id: str, number: int) -> dict[str, Any]:
    """`{"attempt", "invocation", "log_group", "available", "lines", "truncated", "reason"?, "insights"}`."""
    attempt = history.attempt(task_id, number)
    if attempt is None:
        raise NotFound(f"task {task_id} has no attempt {number} kept")
    answer: dict[str, Any] = {
        "attempt": number,
        "invocation": attempt.invocation,
        "log_group": attempt.log_group,
        "available": False,
        "lines": [],
        "truncated": False,
        "insights": insights(task_id, attempt.invocation),
    }
    if not attempt.invocation or not attempt.log_group:
        return answer | {"reason": "this attempt kept no invocation or log group (it ran outside Lambda's runtime)"}
    started = attempt.started_at or attempt.finished_at or datetime.now(UTC)
    finished = attempt.finished_at or started
    request: dict[str, Any] = {
        "logGroupName": attempt.log_group,
        "filterPattern": f'"{attempt.invocation}"',
        "startTime": int((started - MARGIN).timestamp() * 1000),
        "endTime": int((finished + MARGIN).timestamp() * 1000),
        "limit": PAGE_EVENTS,
    }
    try:
        lines, more = _read(request, task_id)
    except ClientError as exc:
        code = exc.response.get("Error", {}).get("Code", "")
        if code == "ResourceNotFoundException":
            return answer | {"reason": f"no log group {attempt.log_group} (yet)"}
        if code in ("AccessDeniedException", "AccessDenied"):
            return answer | {"reason": "the dashboard's role may not read the workers' logs"}
        raise
    return answer | {"available": True, "lines": lines, "truncated": more}


def _read(request: dict[str, Any], task_id: str) -> tuple[list[LogLine], bool]:
    logs = client("logs")
    lines: list[LogLine] = []
    size = 0
    token: str | None = None
    for _ in range(MAX_PAGES):
        page = logs.filter_log_events(**request, **({"nextToken": token} if token else {}))
        for event in page.get("events", []):
            message = str(event.get("message", "")).rstrip("\n")
            if _other_task(message, task_id):
                continue
            message = message if len(message) <= MAX_LINE_CHARS else message[: MAX_LINE_CHARS - 1] + "…"
            size += len(message.encode()) + 40
            if len(lines) >= MAX_LINES or size > MAX_BYTES:
                return lines, True
            moment = datetime.fromtimestamp(int(event.get("timestamp", 0)) / 1000, UTC)
            lines.append({"timestamp": moment.isoformat(timespec="milliseconds"), "message": message})
        token = page.get("nextToken")
        if not token:
            return lines, False
    return lines, True


def _other_task(message: str, task_id: str) -> bool:
    """A structured line of another task of the same batch (it names a different `task_id`)."""
    if not message.startswith("{"):
        return False
    try:
        keys = json.loads(message)
    except ValueError:
        return False
    other = keys.get("task_id") if isinstance(keys, dict) else None
    return isinstance(other, str) and other != task_id
