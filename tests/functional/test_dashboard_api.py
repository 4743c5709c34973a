"""The dashboard over real HTTP without a browser: sessions, CSRF, headers, assets and its JSON views."""

from __future__ import annotations

import json
import time
import uuid
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from typing import Any, cast

import pytest
import requests
from dashboard_support import Signed, dashboard_boom, dashboard_ok, dead_letter_marker, drop_dead_letter, sign_in
from helpers import b64, eventually, final_record, jpeg_bytes, unique_author


@pytest.fixture(scope="module")
def base_url(gateway_url: str) -> str:
    """The app behind the local API Gateway, over real HTTP (the `api` fixture's server)."""
    return gateway_url


@pytest.fixture(scope="module")
def admin(base_url: str, keys: dict[str, str]) -> Signed:
    return sign_in(base_url, keys["admin"])


def _error(response: requests.Response, status: int) -> dict[str, Any]:
    assert response.status_code == status, response.text
    body = response.json()
    assert set(body) == {"error", "message", "fields"}, body
    return cast("dict[str, Any]", body)


def test_login_answers_a_secure_httponly_strict_cookie_without_the_key(base_url: Any, keys: Any) -> None:
    response = requests.post(base_url + "/dashboard/login", json={"key": keys["admin"]}, timeout=30)
    assert response.status_code == 200
    cookie = response.headers["Set-Cookie"]
    attributes = {part.strip().split("=")[0].lower() for part in cookie.split(";")[1:]}
    assert {"httponly", "secure", "samesite", "max-age"} <= attributes and "SameSite=Strict" in cookie
    assert "Path=" not in cookie  # defaults to the dashboard's own path
    assert keys["admin"] not in cookie and keys["admin"] not in response.text
    assert response.headers["Cache-Control"] == "no-store"
    assert response.json()["user"] == "ops" and response.json()["csrf_token"]


@pytest.mark.parametrize(
    ("key", "status", "message"),
    [("alice", 403, "admin key"), (None, 401, "unknown API key")],
)
def test_login_refuses_non_admin_and_unknown_keys(
    base_url: Any, keys: Any, key: Any, status: Any, message: Any
) -> None:
    sent = keys[key] if key else "x" * 43
    response = requests.post(base_url + "/dashboard/login", json={"key": sent}, timeout=30)
    assert message in _error(response, status)["message"]
    assert "Set-Cookie" not in response.headers


def test_login_from_another_origin_is_refused(base_url: Any, keys: Any) -> None:
    response = requests.post(
        base_url + "/dashboard/login",
        json={"key": keys["admin"]},
        headers={"Origin": "https://evil.example"},
        timeout=30,
    )
    _error(response, 403)


@pytest.mark.parametrize("path", ["/dashboard/api/session", "/dashboard/api/queues", "/dashboard/api/tasks"])
def test_json_views_need_a_session(base_url: Any, admin: Any, path: Any) -> None:
    assert _error(requests.get(base_url + path, timeout=30), 401)["error"] == "Unauthorized"
    payload, _, signature = admin.cookie.partition("=")[2].partition(".")
    forged = json.loads(_unb64(payload))
    forged["u"] = "mallory"
    tampered = f"dashboard_session={_b64(json.dumps(forged).encode())}.{signature}"
    _error(requests.get(base_url + path, headers={"Cookie": tampered}, timeout=30), 401)
    assert admin.get(path).status_code == 200


def test_an_expired_session_is_refused(base_url: Any) -> None:
    from chalicelib.dashboard.session import Session, _encode

    expired = _encode(Session("ops", "sid", int(time.time()) - 1))
    response = requests.get(base_url + "/dashboard/api/session", headers={"Cookie": f"dashboard_session={expired}"})
    _error(response, 401)


def test_actions_need_the_sessions_csrf_token_and_the_same_origin(base_url: Any, admin: Any, keys: Any) -> None:
    path = f"/dashboard/api/tasks/{uuid.uuid4()}/rerun"  # an action that changes nothing when let through
    assert "CSRF" in _error(admin.post(path, csrf=""), 403)["message"]
    other = sign_in(base_url, keys["admin"])
    assert "CSRF" in _error(admin.post(path, csrf=other.csrf), 403)["message"]
    _error(admin.post(path, **{"Origin": "https://evil.example"}), 403)
    _error(admin.post(path, **{"Sec-Fetch-Site": "cross-site"}), 403)
    assert admin.post(path, **{"Origin": base_url}).status_code == 404  # past the checks: no such task


def test_logout_clears_the_cookie(base_url: Any, keys: Any) -> None:
    session = sign_in(base_url, keys["admin"])
    response = session.post("/dashboard/logout")
    assert response.status_code == 200 and "Max-Age=0" in response.headers["Set-Cookie"]


def test_logout_revokes_the_session_on_the_server(base_url: Any, keys: Any) -> None:
    """GIVEN two sessions WHEN the first signs out THEN its old cookie gets 401 and the other still works."""
    session, other = sign_in(base_url, keys["admin"]), sign_in(base_url, keys["admin"])
    assert session.get("/dashboard/api/session").status_code == 200
    assert session.post("/dashboard/logout").status_code == 200
    _error(session.get("/dashboard/api/session"), 401)
    _error(session.get("/dashboard/api/queues"), 401)
    _error(session.post(f"/dashboard/api/tasks/{uuid.uuid4()}/rerun"), 401)
    _error(session.post("/dashboard/logout"), 401)
    assert other.get("/dashboard/api/session").status_code == 200


def test_dead_letters_are_peeked_without_being_consumed(admin: Any, settings: Any, paused_workers: Any) -> None:
    from chalicelib.ops.queues import depth

    task_id = dead_letter_marker(settings.media, "the reason shown")
    first = admin.get("/dashboard/api/queues/media/dead-letters?limit=100").json()
    second = admin.get("/dashboard/api/queues/media/dead-letters?limit=100").json()
    for listing in (first, second):
        item = next(i for i in listing["items"] if i["task_id"] == task_id)
        assert item["failure_reason"] == "the reason shown" and item["task"] == "tests.dashboard_ok"
        assert item["source_queue"] == settings.media.name and item["receive_count"] >= 1
    counts = depth(settings.media.dlq_name)
    assert counts.visible + counts.in_flight >= 1
    _error(admin.get("/dashboard/api/queues/media/dead-letters?limit=1000"), 422)
    _error(admin.get("/dashboard/api/queues/nope/dead-letters"), 404)
    drop_dead_letter(settings.media, task_id)


def test_receives_of_a_dead_letter_do_not_count_peeks(admin: Any, api: Any, workers: Any, settings: Any) -> None:
    """GIVEN a task dead-lettered after one delivery WHEN the list is read three times THEN Receives stays 1."""
    task_id = dashboard_boom.delay(uuid.uuid4().hex)
    assert final_record(api, task_id)["status"] == "FAILURE"
    path = "/dashboard/api/queues/default/dead-letters?limit=100"

    def item() -> dict[str, Any] | None:
        return next((i for i in admin.get(path).json()["items"] if i["task_id"] == task_id), None)

    first = eventually(item, timeout=30, what="the dead letter")
    later = [eventually(item, timeout=30, what="the dead letter again") for _ in range(3)]
    assert first["receive_count"] == 1 and all(i["receive_count"] == 1 for i in later)
    assert later[-1]["dlq_receive_count"] > first["dlq_receive_count"]  # the raw count does count the peeks
    drop_dead_letter(settings.default, task_id)


def test_rerun_of_a_permanent_failure_is_refused(admin: Any, api: Any, workers: Any, settings: Any) -> None:
    """GIVEN a task that failed with a permanent error WHEN asked to run again THEN 409, and the detail says so."""
    from dashboard_support import dashboard_permanent

    task_id = dashboard_permanent.delay(uuid.uuid4().hex)
    assert final_record(api, task_id)["status"] == "FAILURE"
    assert admin.get(f"/dashboard/api/tasks/{task_id}").json()["rerunnable"] is False
    assert "permanently" in _error(admin.post(f"/dashboard/api/tasks/{task_id}/rerun"), 409)["message"]
    drop_dead_letter(settings.default, task_id)


def test_purge_deletes_exactly_one_dead_letter_and_makes_its_record_final(
    admin: Any, settings: Any, paused_workers: Any
) -> None:
    from helpers import dead_lettered

    from chalicelib.platform.sqs import dead_letter
    from chalicelib.tasks.envelope import Envelope
    from chalicelib.tasks.models import TaskRecord
    from chalicelib.tasks.records import create_pending

    # A task whose record never became final: its message was moved by the redrive policy.
    stuck = Envelope(task_id=str(uuid.uuid4()), task="tests.dashboard_ok", args=[1])
    create_pending(stuck, "default")
    dead_letter(settings.default, stuck.encode(), "moved by the redrive policy", stuck.task_id)
    kept = dead_letter_marker(settings.default)
    listing = admin.get("/dashboard/api/queues/default/dead-letters?limit=100").json()
    message_id = next(i["message_id"] for i in listing["items"] if i["task_id"] == stuck.task_id)
    response = admin.post("/dashboard/api/queues/default/dead-letters/purge", {"message_id": message_id})
    assert response.status_code == 200 and response.json()["task_id"] == stuck.task_id
    left = dead_lettered(settings.default.dlq_name)
    assert stuck.task_id not in left and kept in left
    record = TaskRecord.get(stuck.task_id, consistent_read=True)
    assert record.status == "FAILURE" and "purged from the dashboard by ops" in record.error
    again = admin.post("/dashboard/api/queues/default/dead-letters/purge", {"message_id": message_id})
    assert "no longer" in _error(again, 404)["message"]
    _error(admin.post("/dashboard/api/queues/default/dead-letters/purge", {"message_id": ""}), 422)
    drop_dead_letter(settings.default, kept)


def test_redrive_of_one_dead_letter_sends_only_it_back_and_it_runs(
    admin: Any, api: Any, settings: Any, paused_workers: Any
) -> None:
    from helpers import dead_lettered

    moved, kept = dead_letter_marker(settings.default), dead_letter_marker(settings.default)
    listing = admin.get("/dashboard/api/queues/default/dead-letters?limit=100").json()
    message_id = next(i["message_id"] for i in listing["items"] if i["task_id"] == moved)
    response = admin.post("/dashboard/api/queues/default/dead-letters/redrive", {"message_id": message_id})
    assert response.status_code == 202 and response.json()["task_id"] == moved, response.text
    left = dead_lettered(settings.default.dlq_name)
    assert moved not in left and kept in left
    again = admin.post("/dashboard/api/queues/default/dead-letters/redrive", {"message_id": message_id})
    assert "no longer" in _error(again, 404)["message"]
    paused_workers.resume()
    assert final_record(api, moved)["status"] == "SUCCESS"
    assert any(e["action"] == "redrive dead letter" for e in admin.get("/dashboard/api/audit").json()["items"][:5])
    drop_dead_letter(settings.default, kept)


def test_rerun_sends_a_new_run_linked_to_the_old_which_keeps_its_history(admin: Any, api: Any, workers: Any) -> None:
    from dashboard_support import HEALED

    token = uuid.uuid4().hex
    task_id = dashboard_boom.delay(token)
    failed = final_record(api, task_id)
    assert failed["status"] == "FAILURE"
    HEALED.add(token)
    response = admin.post(f"/dashboard/api/tasks/{task_id}/rerun")
    assert response.status_code == 202, response.text
    run = response.json()
    assert run["rerun_of"] == task_id and run["id"] != task_id and run["status"] == "PENDING"
    record = eventually(lambda: (r := final_record(api, run["id"])) and r["status"] == "SUCCESS" and r, timeout=60)
    assert record["result"] == {"healed": token} and record["rerun_of"] == task_id
    old = admin.get(f"/dashboard/api/tasks/{task_id}").json()
    assert old["status"] == "FAILURE" and old["error"] == failed["error"] and old["reruns"] == [run["id"]]
    assert old["history"][0]["outcome"] == "failed" and "boom" in old["history"][0]["error"]
    again = admin.post(f"/dashboard/api/tasks/{run['id']}/rerun")  # a SUCCESS can be run again too
    assert again.status_code == 202 and again.json()["rerun_of"] == run["id"]
    _error(admin.post(f"/dashboard/api/tasks/{uuid.uuid4()}/rerun"), 404)


def test_the_task_page_has_every_attempt_its_invocation_and_where_its_logs_are(
    admin: Any, api: Any, workers: Any
) -> None:
    from dashboard_support import dashboard_flaky

    task_id = dashboard_flaky.delay(uuid.uuid4().hex, 2)
    record = eventually(lambda: (r := final_record(api, task_id)) and r["status"] == "SUCCESS" and r, timeout=90)
    assert record["attempts"] == 3
    page = admin.get(f"/dashboard/api/tasks/{task_id}").json()
    outcomes = [(a["number"], a["outcome"]) for a in page["history"]]
    assert outcomes == [(1, "retried"), (2, "retried"), (3, "succeeded")]
    first = page["history"][0]
    assert "flaky attempt 1" in first["error"] and "Traceback (most recent call last)" in first["traceback"]
    assert first["started_at"] <= first["finished_at"] and first["duration_ms"] >= 0
    assert page["history"][2]["error"] is None
    assert task_id in page["logs"]["insights_query"]


def test_a_task_lists_the_tasks_it_sent_and_they_name_it(admin: Any, api: Any, workers: Any) -> None:
    from dashboard_support import dashboard_parent

    parent = dashboard_parent.delay(3)
    children = final_record(api, parent)["result"]
    assert len(children) == 3
    page = admin.get(f"/dashboard/api/tasks/{parent}").json()
    assert sorted(page["children"]) == sorted(children) and page["children_sent"] == 3
    for child in children:
        assert admin.get(f"/dashboard/api/tasks/{child}").json()["parent_id"] == parent


def test_stats_count_each_outcome_and_runtime_per_task_name(admin: Any, api: Any, workers: Any) -> None:
    from dashboard_support import dashboard_flaky

    def flaky() -> dict[str, Any]:
        return cast(
            "dict[str, Any]",
            admin.get("/dashboard/api/stats?window=1h").json()["tasks"].get("tests.dashboard_flaky", {}),
        )

    before = flaky()
    task_id = dashboard_flaky.delay(uuid.uuid4().hex, 1)
    eventually(lambda: (r := final_record(api, task_id)) and r["status"] == "SUCCESS", timeout=90, what="success")
    after = flaky()
    assert after["retried"] - before.get("retried", 0) == 1
    assert after["succeeded"] - before.get("succeeded", 0) == 1
    assert after["processed"] - before.get("processed", 0) == 2
    assert after["runtime_p50_ms"] is not None and after["runtime_p50_ms"] <= after["runtime_max_ms"]
    for window in ("24h", "7d"):
        wide = admin.get(f"/dashboard/api/stats?window={window}").json()
        assert wide["tasks"]["tests.dashboard_flaky"]["processed"] >= after["processed"]
        assert wide["bucket"] == "hour" and wide["series"]
    assert _error(admin.get("/dashboard/api/stats?window=2y"), 422)["fields"][0]["field"] == "window"


def test_queue_depths_are_kept_server_side_a_point_a_minute(admin: Any) -> None:
    first = admin.get("/dashboard/api/queues").json()
    second = admin.get("/dashboard/api/queues").json()
    assert first["depth_series"], "the first look of the minute keeps a point"
    assert len(second["depth_series"]) == len(first["depth_series"])  # not one per look
    assert set(second["depth_series"][-1]["depths"]) == {q["queue"] for q in second["queues"]}


def _search(admin: Signed, pages: int = 40, **params: str) -> list[dict[str, Any]]:
    """Every match of a dashboard search, following its cursor (a page may hold none)."""
    found: list[dict[str, Any]] = []
    cursor = None
    for _ in range(pages):
        query = {**params, "limit": "50", **({"cursor": cursor} if cursor else {})}
        response = admin.get("/dashboard/api/tasks", params=query)
        assert response.status_code == 200, response.text
        page = response.json()
        assert page["scanned"] <= 600
        found += page["items"]
        cursor = page["next_cursor"]
        if not cursor:
            return found
    raise AssertionError(f"the search {params} did not end within {pages} pages")


def test_a_time_window_alone_lists_every_task_in_it_newest_first(admin: Any, api: Any, workers: Any) -> None:
    first = dashboard_ok.delay(1)
    second = dashboard_ok.delay(2)
    records = [final_record(api, first), final_record(api, second)]
    since = min(r["created_at"] for r in records)
    until = max(r["created_at"] for r in records)
    window = _search(admin, since=since, until=until)
    assert {first, second} <= {t["id"] for t in window}
    created = [t["created_at"] for t in window]
    assert created == sorted(created, reverse=True)
    assert all(since <= c <= until for c in created)
    later = _search(admin, since=until)
    assert second in {t["id"] for t in later} and first not in {t["id"] for t in later}


def test_search_finds_partial_names_args_titles_and_errors(admin: Any, api: Any, workers: Any) -> None:
    token = uuid.uuid4().hex
    failed = dashboard_boom.delay(token)
    assert final_record(api, failed)["status"] == "FAILURE"
    title = f"Searchable {uuid.uuid4().hex[:10]}"
    book = {"title": title, "authors": [unique_author("S")], "cover": b64(jpeg_bytes(40, 30))}
    status, created = api.post("/books", book)
    assert status == 202
    for task_id in created["tasks"]:
        final_record(api, task_id)
    since = (datetime.now(UTC) - timedelta(minutes=10)).isoformat()
    by_args = _search(admin, q=token[4:20].upper())  # a case-blind substring of the args
    assert failed in {t["id"] for t in by_args}
    by_error = _search(admin, q="boom", status="FAILURE", since=since)
    assert failed in {t["id"] for t in by_error} and {t["status"] for t in by_error} == {"FAILURE"}
    by_title = _search(admin, q=title.split()[1])
    assert set(created["tasks"]) <= {t["id"] for t in by_title}
    assert {t["book_title"] for t in by_title} == {title}
    partial = _search(admin, name="ashboard_bo", since=since)  # part of "tests.dashboard_boom"
    assert failed in {t["id"] for t in partial} and {t["name"] for t in partial} == {"tests.dashboard_boom"}
    done = [t for t in by_title if t["status"] == "SUCCESS" and t["name"] == "covers.resize"]
    assert done and done[0]["runtime_ms"] is not None and done[0]["runtime_ms"] >= 0


@pytest.mark.parametrize(
    ("query", "field"),
    [
        ("status=DONE", "status"),
        ("since=yesterday&status=SUCCESS", "since"),
        ("q=" + "x" * 201, "q"),
        ("since=2026-02-01T00:00:00Z&until=2026-01-01T00:00:00Z&status=SUCCESS", "since"),
        ("book=" + "b" * 65, "book"),
        ("colour=red", "colour"),
        ("limit=0", "limit"),
    ],
)
def test_task_filters_are_validated(admin: Any, query: Any, field: Any) -> None:
    body = _error(admin.get(f"/dashboard/api/tasks?{query}"), 422)
    assert body["fields"][0]["field"] == field


def test_queues_view_has_depths_ages_and_consumer_limits(admin: Any, settings: Any) -> None:
    queues = {q["queue"]: q for q in admin.get("/dashboard/api/queues").json()["queues"]}
    assert queues["media"]["max_concurrency"] == settings.media.max_concurrency
    assert queues["default"]["batch_size"] == settings.default.batch_size
    for queue in queues.values():
        assert {"visible", "in_flight", "delayed", "oldest_age_seconds"} <= set(queue)
        assert {"visible", "in_flight", "delayed", "oldest_age_seconds"} <= set(queue["dead_letter"])


@pytest.fixture
def stats_url(workers: Any) -> Iterator[str]:
    """The in-process runner's own counters, served by the runtime's StatsServer and registered as
    the app's local runtime, as `make run`'s API process does (devtools/local_api.py)."""
    from chalicelib.ops import local_runtime
    from devtools.runtime.stats import StatsServer
    from devtools.runtime.stats_client import RunnerStats

    server = StatsServer(workers.runner.stats).start()
    before = local_runtime.use(RunnerStats(server.url))
    yield server.url
    local_runtime.use(before)
    server.stop()


def test_workers_view_reads_the_runtime_counters(admin: Any, api: Any, stats_url: Any) -> None:
    final_record(api, dashboard_ok.delay(3))
    # The record is final a moment before the invocation returns and is counted.
    data = eventually(
        lambda: (d := admin.get("/dashboard/api/workers").json())["functions"]["default_worker"]["invocations"] and d,
        timeout=20,
    )
    assert data["available"] is True and data["updated_at"]
    default = data["functions"]["default_worker"]
    assert default["invocations"] >= 1 and default["batch_size"] == 10 and default["max_concurrency"] == 10
    assert set(default) >= {"errors", "timeouts", "throttles", "p50_ms", "p95_ms", "warm_sandboxes", "memory_mb"}


def test_worker_counters_survive_a_restart_of_the_runner(api: Any, workers: Any) -> None:
    final_record(api, dashboard_ok.delay(4))
    stats = workers.runner.stats.functions["default_worker"]
    eventually(lambda: stats.invocations >= 1, timeout=20, what="the invocation to be counted")
    before = stats.as_dict()
    assert before["invocations"] >= 1 and before["cold_starts"] >= 0 and before["in_use"] >= 0
    workers.pause()  # the runner stops (and keeps its counters)
    workers.resume()  # a new runner, with new counters objects
    after = workers.runner.stats.functions["default_worker"].as_dict()
    assert after["invocations"] >= before["invocations"] and after["errors"] >= before["errors"]
    assert after["p50_ms"] is not None


def test_workers_view_says_why_when_the_runtime_does_not_answer(admin: Any) -> None:
    from chalicelib.ops import local_runtime
    from devtools.emulator.process import free_port
    from devtools.runtime.stats_client import RunnerStats

    dead = f"http://127.0.0.1:{free_port()}/stats"
    before = local_runtime.use(RunnerStats(dead))
    try:
        data = admin.get("/dashboard/api/workers").json()
    finally:
        local_runtime.use(before)
    assert data["available"] is False and "does not answer" in data["reason"]
    unset = admin.get("/dashboard/api/workers").json()  # none registered: "not available" (AWS)
    assert unset["available"] is False and "no local runtime" in unset["reason"]


def _b64(raw: bytes) -> str:
    import base64

    return base64.urlsafe_b64encode(raw).decode().rstrip("=")


def _unb64(text: str) -> bytes:
    import base64

    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


def test_a_kept_task_table_gets_the_book_index_it_lacks(aws: Any, settings: Any) -> None:
    """Local state kept from an earlier run (before the book index existed) is brought up to date."""
    from chalicelib.tasks.models import TaskRecord
    from infra.local import create_tables

    ddb = aws("dynamodb")
    ddb.update_table(
        TableName=settings.tasks_table, GlobalSecondaryIndexUpdates=[{"Delete": {"IndexName": "book-created-index"}}]
    )

    def indexes() -> set[str]:
        table = ddb.describe_table(TableName=settings.tasks_table)["Table"]
        return {i["IndexName"] for i in table.get("GlobalSecondaryIndexes", [])}

    assert "book-created-index" not in indexes()
    create_tables()
    assert "book-created-index" in indexes()
    assert list(TaskRecord.book_index.query("no-such-book", limit=1)) == []


def test_an_sqs_outage_is_a_503_in_the_one_error_shape(admin: Any, faults: Any) -> None:
    faults.add(service="sqs", action="GetQueueAttributes", code="ServiceUnavailable", status=503)
    response = admin.get("/dashboard/api/queues")
    assert _error(response, 503)["error"] == "ServiceUnavailable"
    assert response.headers["X-Frame-Options"] == "DENY" and response.headers["Cache-Control"] == "no-store"
    faults.clear()
    assert admin.get("/dashboard/api/queues").status_code == 200


def test_the_live_list_reads_the_titles_of_its_rows_only(admin: Any) -> None:
    """Without a text to match, a page reads the book titles of the rows it answers, not of
    every record the walk examined (4 shards x (limit + 1)): the old walk read them all."""
    from botocore.client import BaseClient

    from chalicelib.books.models import Book
    from chalicelib.platform.config import get_settings
    from chalicelib.tasks.models import TaskRecord
    from chalicelib.tasks.records import bucket_of

    newest = datetime.now(UTC) + timedelta(minutes=5)  # above every other test's records
    titles, seeded = {}, []
    for i in range(30):
        book_id, task_id = str(uuid.uuid4()), str(uuid.uuid4())
        titles[book_id] = f"Titled {i}"
        Book(book_id, owner="alice", title=titles[book_id], authors=["Shown"]).save()
        created = newest + timedelta(seconds=i)
        TaskRecord(
            task_id, name="tests.dashboard_ok", queue="default", status="SUCCESS", book_id=book_id,
            created_at=created, created_bucket=bucket_of(task_id, created),
        ).save()  # fmt: skip
        seeded.append((task_id, book_id))
    books_table, asked = get_settings().books_table, []
    original = BaseClient._make_api_call

    def observed(client: Any, operation: str, params: dict[str, Any]) -> Any:
        if operation == "BatchGetItem" and books_table in params.get("RequestItems", {}):
            asked.extend(params["RequestItems"][books_table]["Keys"])
        return original(client, operation, params)

    BaseClient._make_api_call = observed
    try:
        response = admin.get("/dashboard/api/tasks", params={"limit": "5"})
    finally:
        BaseClient._make_api_call = original
        for task_id, book_id in seeded:  # records from the future would top every later test's list
            TaskRecord(task_id).delete()
            Book(book_id).delete()
    assert response.status_code == 200, response.text
    rows = response.json()["items"]
    assert len(rows) == 5 and all(row["book_title"] == titles[row["book_id"]] for row in rows)
    assert len(asked) == 5  # the old walk asked for every record it read: up to 4 x 6
