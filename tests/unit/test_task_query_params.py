"""`GET /tasks/{id}`'s parameters are checked before the record is read (no AWS here, so a check
that came after a read would fail these): a bad `?wait=` and a control item's id."""

from __future__ import annotations

import uuid
from typing import Any

import pytest


@pytest.mark.parametrize("wait", ["21", "-1", "2.5", "abc", "", "1000000", "٣"])
def test_get_task_with_a_bad_wait_is_422(api: Any, wait: Any) -> None:
    task_id = str(uuid.uuid4())
    status, body = api.get(f"/tasks/{task_id}?wait={wait}", user="admin")
    assert status == 422 and set(body) == {"error", "message", "fields"}
    assert [f["field"] for f in body["fields"]] == ["wait"]


def test_control_items_are_not_tasks_over_http(api: Any) -> None:
    status, body = api.get("/tasks/control%23periodic%23outbox_relay", user="admin")
    assert status == 404 and set(body) == {"error", "message", "fields"}
