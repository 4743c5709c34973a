"""An attempt's log lines on the deployed stack: MiniStack writes each function invocation's
output to CloudWatch Logs (`/aws/lambda/<function>`, START/END/REPORT), as Lambda does, and the
dashboard's `GET /dashboard/api/tasks/{id}/logs` reads them with FilterLogEvents (issue 23)."""

from __future__ import annotations

import base64
from typing import Any

import requests
from support import Api, Target, eventually, image, unique


def test_the_dashboard_reads_a_cover_tasks_log_lines_from_cloudwatch(api: Api, target: Target) -> None:
    status, created = api.post(
        "/books", {"title": "Logged", "authors": [unique("Logs")], "cover": base64.b64encode(image()).decode()}
    )
    assert status == 202, created
    api.ready(created["book"]["id"], timeout=180)
    (task_id,) = [t for t in created["tasks"] if api.task(t).get("name") == "covers.resize"]
    login = requests.post(f"{target.api_url}/dashboard/login", json={"key": target.keys["ops"]}, timeout=30)
    assert login.status_code == 200, login.text
    cookie = login.headers["Set-Cookie"].split(";")[0]  # Secure: passed by hand over http://

    def lines() -> dict[str, Any] | None:
        answer = requests.get(
            f"{target.api_url}/dashboard/api/tasks/{task_id}/logs?attempt=1", headers={"Cookie": cookie}, timeout=30
        )
        assert answer.status_code == 200, answer.text
        got = dict(answer.json())
        return got if any("task succeeded" in line["message"] for line in got["lines"]) else None

    got = eventually(lines, timeout=60, interval=2, what="the task's lines in CloudWatch Logs")
    assert got["log_group"] == f"/aws/lambda/{target.name('media_worker')}"
    messages = [line["message"] for line in got["lines"]]
    assert any(m.startswith(f"START RequestId: {got['invocation']}") for m in messages), messages
    assert any(task_id in m for m in messages), messages
