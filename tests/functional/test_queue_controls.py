"""Pause, resume and resize a queue's consumers (admin API and dashboard), revoke and bulk
re-run from the dashboard, and the audit log of every control; over real HTTP."""

from __future__ import annotations

import time
import uuid
from collections.abc import Iterator
from typing import Any
from urllib.parse import urlencode

import pytest
import requests
from dashboard_support import Signed, dashboard_boom, dashboard_ok, sign_in
from helpers import eventually, final_record


@pytest.fixture(scope="module")
def admin(gateway_url: str, keys: dict[str, str]) -> Signed:
    return sign_in(gateway_url, keys["admin"])


@pytest.fixture
def restored(settings: Any) -> Iterator[None]:
    """Every queue's consumers as configured again after the test, whatever it did."""
    yield
    from chalicelib.ops.consumers import ConsumerState, _key

    for queue in settings.queues.values():
        ConsumerState(_key(queue.name)).delete()


def _queues(api: Any) -> dict[str, dict[str, Any]]:
    status, body = api.get("/queues", user="admin")
    assert status == 200
    return {q["queue"]: q for q in body["queues"]}


def _admin_call(gateway_url: str, keys: dict[str, str], method: str, path: str, body: Any = None) -> requests.Response:
    headers = {"Authorization": f"Bearer {keys['admin']}"}
    return requests.request(method, gateway_url + path, json=body, headers=headers, timeout=30)


def test_pause_holds_the_queue_and_resume_finishes_it(
    api: Any, gateway_url: Any, keys: Any, workers: Any, restored: Any
) -> None:
    paused = _admin_call(gateway_url, keys, "POST", "/queues/default/pause")
    assert paused.status_code == 200, paused.text
    assert paused.json()["paused"] is True and _queues(api)["default"]["paused"] is True
    time.sleep(2.5)  # the runner looks at the wanted state once a second
    task_id = dashboard_ok.delay(31)
    time.sleep(4)
    assert api.get(f"/tasks/{task_id}", user="admin")[1]["status"] == "PENDING"  # held: nobody receives it
    resumed = _admin_call(gateway_url, keys, "POST", "/queues/default/resume")
    assert resumed.status_code == 200 and resumed.json()["paused"] is False
    assert final_record(api, task_id)["status"] == "SUCCESS"
    assert _queues(api)["default"]["paused"] is False


def test_max_concurrency_is_set_shown_and_bounded(api: Any, gateway_url: Any, keys: Any, restored: Any) -> None:
    changed = _admin_call(gateway_url, keys, "PUT", "/queues/media/concurrency", {"max_concurrency": 7})
    assert changed.status_code == 200, changed.text
    assert _queues(api)["media"]["max_concurrency"] == 7
    for bad in (1, 1001, "5", None, True):
        refused = _admin_call(gateway_url, keys, "PUT", "/queues/media/concurrency", {"max_concurrency": bad})
        assert refused.status_code == 422, (bad, refused.text)
        assert refused.json()["fields"][0]["field"] == "max_concurrency"
    assert (
        _admin_call(gateway_url, keys, "PUT", "/queues/nowhere/concurrency", {"max_concurrency": 5}).status_code == 404
    )
    user = requests.put(
        gateway_url + "/queues/media/concurrency",
        json={"max_concurrency": 5},
        headers={"Authorization": f"Bearer {keys['alice']}"},
        timeout=30,
    )
    assert user.status_code == 403


def test_the_runner_obeys_a_new_maximum_concurrency(
    api: Any, gateway_url: Any, keys: Any, workers: Any, restored: Any
) -> None:
    from devtools.runtime.stats import RuntimeStats  # noqa: F401 - the runner's own counters

    _admin_call(gateway_url, keys, "PUT", "/queues/default/concurrency", {"max_concurrency": 3})
    poller = next(p for p in workers.runner.pollers.values() if p.queue_name.endswith("default"))
    eventually(lambda: poller.concurrency == 3, timeout=10, what="the runner to take the new maximum")
    _admin_call(gateway_url, keys, "PUT", "/queues/default/concurrency", {"max_concurrency": 2})
    eventually(lambda: poller.concurrency == 2, timeout=10, what="the runner to take the new maximum")


def test_dashboard_controls_are_confirmed_by_csrf_and_audited(
    admin: Any, api: Any, paused_workers: Any, restored: Any
) -> None:
    assert admin.post("/dashboard/api/queues/default/pause", csrf="wrong").status_code == 403
    assert admin.post("/dashboard/api/queues/default/pause").status_code == 200
    task_id = dashboard_ok.delay(32)
    revoked = admin.post(f"/dashboard/api/tasks/{task_id}/revoke")
    assert revoked.status_code == 200, revoked.text
    assert revoked.json()["status"] == "REVOKED"
    assert admin.post(f"/dashboard/api/tasks/{task_id}/revoke").status_code == 409
    assert admin.post("/dashboard/api/queues/default/resume").status_code == 200
    log = admin.get("/dashboard/api/audit").json()["items"]
    actions = [(e["action"], e["target"]) for e in log[:5]]
    assert ("resume", "queue default") in actions and ("revoke", f"task {task_id}") in actions
    assert ("pause", "queue default") in actions
    assert all(e["user"] and e["at"] for e in log[:5])
    assert log == sorted(log, key=lambda e: e["at"], reverse=True)


def test_bulk_retry_runs_every_failure_of_the_filter_again_once(admin: Any, api: Any, workers: Any) -> None:
    from dashboard_support import HEALED

    tokens = [f"bulk-{uuid.uuid4().hex}" for _ in range(2)]
    failed = [dashboard_boom.delay(t) for t in tokens]
    for task_id in failed:
        assert final_record(api, task_id)["status"] == "FAILURE"
    HEALED.update(tokens)
    since = min(final_record(api, t)["created_at"] for t in failed)
    query = {"name": "tests.dashboard_boom", "since": since}
    runs: list[str] = []
    cursor = None
    for _ in range(20):
        params = {**query, **({"cursor": cursor} if cursor else {})}
        response = admin.post("/dashboard/api/tasks/retry-failures?" + urlencode(params))
        assert response.status_code == 202, response.text
        runs += response.json()["runs"]
        cursor = response.json()["next_cursor"]
        if not cursor:
            break
    mine = {admin.get(f"/dashboard/api/tasks/{r}").json()["rerun_of"]: r for r in runs}
    assert set(failed) <= set(mine)
    for task_id in failed:
        assert eventually(lambda t=task_id: (r := final_record(api, mine[t])) and r["status"] == "SUCCESS", timeout=60)
    again = admin.post("/dashboard/api/tasks/retry-failures?" + urlencode(query)).json()
    repeated = {admin.get(f"/dashboard/api/tasks/{r}").json()["rerun_of"] for r in again["runs"]}
    assert not repeated & set(failed)  # each failure is run again once
