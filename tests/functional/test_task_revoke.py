"""revoke: a waiting task never runs and leaves no DLQ copy; a running one is told; final ones are a 409.

Over real HTTP (the local API Gateway) and the local event source runner, against the emulator.
"""

from __future__ import annotations

import time
import uuid
from typing import Any

from helpers import b64, dead_lettered, eventually, jpeg_bytes, task_record, unique_author

from chalicelib.tasks import revocation
from chalicelib.tasks.decorator import task
from chalicelib.tasks.errors import TransientTaskError

RAN: list[str] = []
STEPS: dict[str, int] = {}


@task("tests.revoke.records_run")
def records_run(marker: str) -> str:
    RAN.append(marker)
    return marker


@task("tests.revoke.fails_once", retry_backoff=False, default_retry_delay=3)
def fails_once(marker: str) -> str:
    RAN.append(marker)
    if RAN.count(marker) == 1:
        raise TransientTaskError("first attempt fails")
    return marker


@task("tests.revoke.steps")
def steps(marker: str) -> dict[str, int]:
    """A long task that checks for a revoke between its steps, as the mail fan-out does between chunks."""
    for step in range(300):
        STEPS[marker] = step
        if revocation.revoked():
            return {"stopped_at": step}
        time.sleep(0.1)
    return {"stopped_at": -1}


def _status(api: Any, task_id: str) -> str | None:
    record = task_record(api, task_id)
    return record["status"] if record else None


def test_revoked_pending_and_delayed_tasks_never_run_and_skip_the_dlq(
    api: Any, paused_workers: Any, settings: Any
) -> None:
    # GIVEN a task waiting in the queue and one delayed by a countdown
    now, later = f"now-{uuid.uuid4()}", f"later-{uuid.uuid4()}"
    waiting = records_run.delay(now)
    delayed = records_run.apply_async(args=[later], countdown=2)
    assert _status(api, waiting) == "PENDING" and _status(api, delayed) == "PENDING"
    # WHEN an admin revokes both over HTTP
    for task_id in (waiting, delayed):
        status, body = api.post(f"/tasks/{task_id}/revoke", user="admin")
        assert status == 200, body
        assert body["status"] == "REVOKED" and body["error"] == "revoked" and body["finished_at"]
    status, listed = api.get("/tasks?status=REVOKED&name=tests.revoke.records_run&limit=100", user="admin")
    assert status == 200 and {waiting, delayed} <= {r["id"] for r in listed["items"]}
    # THEN the messages are received and dropped: nothing runs, nothing reaches the DLQ
    paused_workers.resume()
    control_id = records_run.delay(f"control-{uuid.uuid4()}")  # a later task runs: the queue was drained
    eventually(lambda: _status(api, control_id) == "SUCCESS", what="control task")
    time.sleep(3)  # the delayed message is due by now
    eventually(lambda: _status(api, control_id) == "SUCCESS", what="control task")
    assert now not in RAN and later not in RAN
    assert _status(api, waiting) == "REVOKED" and _status(api, delayed) == "REVOKED"
    dlq = dead_lettered(settings.default.dlq_name)
    assert waiting not in dlq and delayed not in dlq


def test_a_task_waiting_for_its_retry_is_revoked_for_good(api: Any, workers: Any, settings: Any) -> None:
    marker = f"retry-{uuid.uuid4()}"
    task_id = fails_once.delay(marker)
    eventually(lambda: _status(api, task_id) == "RETRY", what="first attempt failed")
    status, body = api.post(f"/tasks/{task_id}/revoke", user="admin")
    assert status == 200 and body["status"] == "REVOKED" and body["attempts"] == 1
    time.sleep(6)  # past the 3 s retry delay: the message came back and was dropped
    assert RAN.count(marker) == 1
    assert _status(api, task_id) == "REVOKED"
    assert task_id not in dead_lettered(settings.default.dlq_name)


def test_a_running_task_is_told_and_stops_and_its_result_is_not_kept(api: Any, workers: Any) -> None:
    marker = f"steps-{uuid.uuid4()}"
    task_id = steps.delay(marker)
    eventually(lambda: STEPS.get(marker, 0) >= 3, what="task running")
    status, body = api.post(f"/tasks/{task_id}/revoke", user="admin")
    assert status == 200 and body["status"] == "REVOKED"
    time.sleep(1.5)  # the task saw the revoke at its next step and returned
    reached = STEPS[marker]
    time.sleep(1)
    assert STEPS[marker] == reached < 100, "the task kept running after the revoke"
    record = task_record(api, task_id)
    assert record is not None and record["status"] == "REVOKED" and record["result"] is None


def test_only_the_owner_or_an_admin_revokes_and_final_tasks_are_a_409(api: Any, paused_workers: Any) -> None:
    status, created = api.post("/books", {"title": "Revocable", "authors": [unique_author("Revoke")]}, user="alice")
    assert status == 202
    (notify_id,) = created["tasks"]
    status, body = api.post(f"/tasks/{notify_id}/revoke", user="bob")
    assert status == 404 and body["error"] == "NotFound"
    status, body = api.post(f"/tasks/{uuid.uuid4()}/revoke", user="alice")
    assert status == 404
    status, body = api.post(f"/tasks/{notify_id}/revoke", user="alice")
    assert status == 200 and body["status"] == "REVOKED"
    status, body = api.post(f"/tasks/{notify_id}/revoke", user="alice")
    assert status == 409 and body["error"] == "Conflict"
    assert "REVOKED already" in body["message"] and body["fields"] == [{"field": "status", "message": "is REVOKED"}]


def test_revoking_a_succeeded_task_is_a_409_and_changes_nothing(api: Any, workers: Any) -> None:
    task_id = records_run.delay(f"done-{uuid.uuid4()}")
    eventually(lambda: _status(api, task_id) == "SUCCESS", what="success")
    status, body = api.post(f"/tasks/{task_id}/revoke", user="admin")
    assert status == 409 and "is SUCCESS already" in body["message"]
    assert _status(api, task_id) == "SUCCESS"


def test_a_revoked_cover_task_leaves_the_book_failed_not_pending(api: Any, paused_workers: Any) -> None:
    body = {"title": "Revoked cover", "authors": [unique_author("Cover")], "cover": b64(jpeg_bytes())}
    status, created = api.post("/books", body)
    assert status == 202 and created["book"]["cover_status"] == "pending"
    resize_id = created["tasks"][0]
    assert task_record(api, resize_id)["name"] == "covers.resize"
    status, revoked = api.post(f"/tasks/{resize_id}/revoke")
    assert status == 200 and revoked["status"] == "REVOKED"
    status, book = api.get(f"/books/{created['book']['id']}")
    assert status == 200 and book["cover_status"] == "failed" and book["cover"]["error"] == "revoked"
    paused_workers.resume()
    time.sleep(3)  # the resize message arrives and is dropped: the cover stays failed
    status, book = api.get(f"/books/{created['book']['id']}")
    assert book["cover_status"] == "failed" and task_record(api, resize_id)["status"] == "REVOKED"


def test_a_revoked_fan_out_page_stops_between_chunks(api: Any, workers: Any, monkeypatch: Any) -> None:
    from chalicelib.mail.fanout import progress
    from chalicelib.platform.config import get_settings
    from devtools.seed import seed_subscribers

    monkeypatch.setenv("SES_MAX_SEND_RATE", "10")  # chunks of 10 mails, one a second
    get_settings.cache_clear()
    try:
        author = unique_author("Revoked fan-out")
        seed_subscribers(author, "alice", confirmed=300)
        status, created = api.post("/books", {"title": "Stop the mail", "authors": [author]})
        assert status == 202
        book_id, root = created["book"]["id"], created["tasks"][-1]
        eventually(lambda: (p := progress(book_id)) is not None and p["mailed"] >= 20, timeout=60, what="mailing")
        status, body = api.post(f"/tasks/{root}/revoke")
        assert status == 200 and body["status"] == "REVOKED"
        time.sleep(3)  # the page sees the revoke before its next chunk
        stopped = progress(book_id)
        time.sleep(3)
        assert stopped is not None and progress(book_id) == stopped, "the fan-out went on after the revoke"
        assert 20 <= stopped["mailed"] < 300 and not stopped["complete"] and stopped["pages"] == 0  # no hand-off
        record = task_record(api, root)
        assert record is not None and record["status"] == "REVOKED" and record["result"] is None
    finally:
        monkeypatch.undo()
        get_settings.cache_clear()
