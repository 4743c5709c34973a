"""The dashboard in a real browser: Debian's headless Chromium driven by Playwright.

The app is served over real HTTP by the local API Gateway (`gateway_url`). Chromium is installed by
`make test` when missing; where it cannot be, these tests skip and say why.
"""

from __future__ import annotations

import os
import shutil
import uuid
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any, cast

import pytest
from dashboard_support import (
    HEALED,
    clear_dead_letters,
    dashboard_boom,
    dashboard_ok,
    dashboard_permanent,
    dead_letter_marker,
    drop_dead_letter,
)
from helpers import eventually, final_record

CHROMIUM = os.environ.get("CHROMIUM", "/usr/bin/chromium")
ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]
ROOT = Path(__file__).resolve().parents[2]

# make test-e2e: a Chromium per worker, a browser context per test (make test leaves them out).
pytestmark = pytest.mark.e2e


@pytest.fixture(scope="module")
def browser() -> Iterator[Any]:
    if not Path(CHROMIUM).exists() and not shutil.which("chromium"):
        pytest.skip(f"no Chromium at {CHROMIUM}: `make test` installs it (apt-get install chromium chromium-driver)")
    try:
        from playwright.sync_api import sync_playwright
    except ImportError:
        pytest.skip("Playwright for Python is not installed (requirements-dev.txt)")
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=CHROMIUM, args=ARGS)
        yield browser
        browser.close()


@pytest.fixture(scope="module")
def base_url(gateway_url: str) -> str:
    """The app behind the local API Gateway, over real HTTP (the `api` fixture's server)."""
    return gateway_url


class Dashboard:
    """One browser tab on the dashboard, recording every URL it asks for and every console line."""

    def __init__(self, browser: Any, base_url: str) -> None:
        self.context = browser.new_context(viewport={"width": 1280, "height": 900})
        self.page = self.context.new_page()
        self.base_url = base_url
        self.urls: list[str] = []
        self.console: list[str] = []
        self.page.on("request", lambda request: self.urls.append(request.url))
        self.page.on("console", lambda message: self.console.append(message.text))
        self.page.set_default_timeout(30_000)

    def open(self, fragment: str = "") -> Any:
        return self.page.goto(f"{self.base_url}/dashboard{fragment}")

    def sign_in(self, key: str) -> None:
        self.open()
        self.page.fill("#key", key)
        self.page.click("#login-form button")

    def go(self, fragment: str) -> None:
        self.page.evaluate("hash => { location.hash = hash; }", fragment)

    def text(self, selector: str) -> str:
        return str(self.page.locator(selector).first.text_content() or "")

    def close(self) -> None:
        self.context.close()


@pytest.fixture
def tab(browser: Any, base_url: str) -> Iterator[Dashboard]:
    dashboard = Dashboard(browser, base_url)
    yield dashboard
    csp_violations = [line for line in dashboard.console if "Content Security Policy" in line]
    dashboard.close()
    assert not csp_violations, csp_violations


@pytest.fixture
def admin_tab(tab: Dashboard, keys: dict[str, str]) -> Dashboard:
    tab.sign_in(keys["admin"])
    tab.page.wait_for_selector("#queues-body tr")
    return tab


def _cell(tab: Dashboard, queue: str, column: int) -> int | None:
    text = tab.text(f'#queues-body tr[data-queue="{queue}"] td:nth-child({column})').strip()
    return int(text) if text.isdigit() else None


def test_admin_signs_in_with_a_secure_httponly_strict_cookie_and_no_key_in_any_url(admin_tab: Any, keys: Any) -> None:
    assert "signed in as ops" in admin_tab.text("#who")
    assert admin_tab.page.locator('#queues-body tr[data-queue="media"]').count() == 1
    cookies = {c["name"]: c for c in admin_tab.context.cookies()}
    session = cookies["dashboard_session"]  # Chromium keeps a Secure cookie on http://127.0.0.1 (a secure context)
    assert session["httpOnly"] and session["secure"] and session["sameSite"] == "Strict"
    assert session["path"] == "/dashboard"
    assert keys["admin"] not in session["value"]
    assert not any(keys["admin"] in url for url in admin_tab.urls)
    assert admin_tab.page.evaluate("document.cookie") == ""  # HttpOnly: no script can read it


def test_non_admin_key_is_refused(tab: Any, keys: Any) -> None:
    tab.sign_in(keys["alice"])
    eventually(lambda: "admin key" in tab.text("#login-error"), timeout=20, what="the refusal")
    assert tab.page.locator("#nav").is_hidden()
    assert not [c for c in tab.context.cookies() if c["name"] == "dashboard_session"]
    tab.page.fill("#key", "not-a-key")
    tab.page.click("#login-form button")
    eventually(lambda: "unknown API key" in tab.text("#login-error"), timeout=20, what="the refusal")


def test_page_has_a_strict_csp_and_no_inline_script_or_style(tab: Any) -> None:
    response = tab.open()
    headers = response.headers
    csp = headers["content-security-policy"]
    assert "script-src 'self'" in csp and "style-src 'self'" in csp and "frame-ancestors 'none'" in csp
    assert "unsafe-inline" not in csp and "unsafe-eval" not in csp
    assert headers["x-frame-options"] == "DENY"
    assert headers["x-content-type-options"] == "nosniff"
    assert headers["referrer-policy"] == "no-referrer"
    tab.page.wait_for_selector("#login:not([hidden])")
    assert tab.page.evaluate("document.querySelectorAll('script:not([src])').length") == 0
    assert tab.page.evaluate("document.querySelectorAll('[style]').length") == 0
    handlers = "[...document.querySelectorAll('*')].some(e => [...e.attributes].some(a => a.name.startsWith('on')))"
    assert tab.page.evaluate(handlers) is False


def _visible_in_sqs(queue_name: str) -> int:
    from chalicelib.platform.aws import client
    from chalicelib.platform.sqs import queue_url

    attributes = client("sqs").get_queue_attributes(
        QueueUrl=queue_url(queue_name), AttributeNames=["ApproximateNumberOfMessages"]
    )["Attributes"]
    return int(attributes["ApproximateNumberOfMessages"])


def test_queue_depth_rises_while_consumers_are_paused_and_falls_when_they_run(
    admin_tab: Any, paused_workers: Any, settings: Any
) -> None:
    # The baseline is the depth once the page shows what SQS holds: a row drawn before the
    # consumers paused may still count messages they took meanwhile (then the rise never came).
    shown = eventually(
        lambda: (depth := _cell(admin_tab, "default", 2)) == _visible_in_sqs(settings.default.name) and [depth],
        timeout=30,
        what="the page to show the queue's depth",
    )
    baseline = shown[0] or 0
    ids = [dashboard_ok.delay(i) for i in range(12)]
    eventually(lambda: (_cell(admin_tab, "default", 2) or 0) >= baseline + 12, timeout=30, what="the depth to rise")
    assert admin_tab.page.locator('#chart-depth path[data-queue="default"]').count() == 1
    for schedule in ("outbox_relay", "dead_letter_reconciler"):  # the periodic tasks are listed beside the queues
        assert admin_tab.page.locator(f'#schedules-body tr[data-schedule="{schedule}"]').count() == 1
    eventually(lambda: (_cell(admin_tab, "default", 5) or -1) >= 0, timeout=30, what="an oldest age")
    paused_workers.resume()
    eventually(lambda: _cell(admin_tab, "default", 2) == 0, timeout=60, what="the depth to fall")
    for task_id in ids:
        assert final_record_ok(task_id)


def final_record_ok(task_id: str) -> bool:
    from chalicelib.tasks.models import TaskRecord

    return cast(
        "bool", eventually(lambda: TaskRecord.get(task_id, consistent_read=True).status == "SUCCESS", timeout=60)
    )


def test_failure_task_page_shows_the_traceback_and_runs_it_again(admin_tab: Any, workers: Any, api: Any) -> None:
    token = uuid.uuid4().hex
    task_id = dashboard_boom.delay(token)
    assert final_record(api, task_id)["status"] == "FAILURE"
    admin_tab.go("#/tasks?status=FAILURE&name=tests.dashboard_boom")
    admin_tab.page.click(f'#tasks-body tr[data-task="{task_id}"] a')
    admin_tab.page.wait_for_selector("#task-rerun:not([hidden])")
    traceback = admin_tab.text("#task-traceback")
    assert "Traceback (most recent call last)" in traceback and f"RuntimeError: boom for {token}" in traceback
    assert "FAILURE" in admin_tab.text("#task-fields")
    HEALED.add(token)
    admin_tab.page.once("dialog", lambda dialog: dialog.accept())  # every control is confirmed
    admin_tab.page.click("#task-rerun")
    # A new run, linked to the old one, whose page the dashboard opens; the old keeps its history.
    admin_tab.page.wait_for_selector(f'#task-links a[href="#/tasks/{task_id}"]')
    new_id = admin_tab.text("#task-id")
    assert new_id != task_id
    record = eventually(
        lambda: (r := final_record(api, new_id)) and r["status"] == "SUCCESS" and r, timeout=60, what="the re-run"
    )
    assert record["rerun_of"] == task_id and record["result"] == {"healed": token}
    assert final_record(api, task_id)["status"] == "FAILURE"


def test_a_book_links_to_its_tasks(admin_tab: Any, api: Any, workers: Any) -> None:
    from helpers import b64, jpeg_bytes, unique_author

    status, created = api.post("/books", {"title": "Linked", "authors": [unique_author()], "cover": b64(jpeg_bytes())})
    assert status == 202
    book_id, task_ids = created["book"]["id"], created["tasks"]
    admin_tab.go(f"#/tasks/{task_ids[0]}")
    admin_tab.page.click(f'#task-fields a[href="#/tasks?book={book_id}"]')
    admin_tab.page.wait_for_selector(f'#tasks-body tr[data-task="{task_ids[1]}"]')
    shown = admin_tab.page.eval_on_selector_all("#tasks-body tr", "rows => rows.map(r => r.dataset.task)")
    assert sorted(shown) == sorted(task_ids)
    assert admin_tab.page.input_value('#task-filter input[name="book"]') == book_id


def test_tasks_filter_by_status_name_and_time_in_the_form(admin_tab: Any, workers: Any, api: Any) -> None:
    from datetime import UTC, datetime, timedelta

    task_id = dashboard_ok.delay(5)
    final_record(api, task_id)
    admin_tab.go("#/tasks")
    form = admin_tab.page.locator("#task-filter")
    form.locator('select[name="status"]').select_option("SUCCESS")
    form.locator('input[name="name"]').fill("tests.dashboard_ok")
    since = (datetime.now(UTC) - timedelta(minutes=5)).strftime("%Y-%m-%dT%H:%M:%S")
    form.locator('input[name="since"]').fill(since)
    form.locator('button[type="submit"]').click()
    admin_tab.page.wait_for_selector(f'#tasks-body tr[data-task="{task_id}"]')
    names = admin_tab.page.eval_on_selector_all(
        "#tasks-body tr td:nth-child(3)", "cells => cells.map(c => c.textContent)"
    )
    assert set(names) == {"tests.dashboard_ok"}
    assert admin_tab.text("#tasks-error") == ""
    form.locator('input[name="until"]').fill((datetime.now(UTC) - timedelta(hours=1)).strftime("%Y-%m-%dT%H:%M:%S"))
    form.locator('button[type="submit"]').click()
    eventually(lambda: "since" in admin_tab.text("#tasks-error"), timeout=20, what="since after until refused")


def test_redrive_a_dead_letter_queue_from_the_page(admin_tab: Any, paused_workers: Any, settings: Any) -> None:
    clear_dead_letters(settings.default)  # the page lists 50: this test's marker must be among them
    task_id = dead_letter_marker(settings.default)
    admin_tab.go("#/dead-letters")
    box = '.dlq[data-queue="default"]'
    admin_tab.page.wait_for_selector(f'{box} a[href="#/tasks/{task_id}"]')
    assert "for the dashboard test" in admin_tab.text(f"{box} table")
    admin_tab.page.once("dialog", lambda dialog: dialog.accept())  # every control is confirmed
    admin_tab.page.click(f"{box} button.redrive")
    eventually(lambda: admin_tab.text(f"{box} .dl-count").startswith("0 visible"), timeout=30, what="an empty DLQ")
    assert admin_tab.page.locator(f"{box} tbody tr").count() == 0


def test_purge_one_dead_letter_after_confirmation(admin_tab: Any, paused_workers: Any, settings: Any) -> None:
    from chalicelib.ops.queues import depth

    kept, purged = dead_letter_marker(settings.media), dead_letter_marker(settings.media)
    admin_tab.go("#/dead-letters")
    box = '.dlq[data-queue="media"]'
    row = f'{box} tr:has(a[href="#/tasks/{purged}"])'
    admin_tab.page.wait_for_selector(row)
    admin_tab.page.once("dialog", lambda dialog: dialog.dismiss())
    admin_tab.page.click(f"{row} button.purge")
    assert depth(settings.media.dlq_name).visible + depth(settings.media.dlq_name).in_flight >= 2
    admin_tab.page.once("dialog", lambda dialog: dialog.accept())
    admin_tab.page.click(f"{row} button.purge")
    eventually(lambda: admin_tab.page.locator(row).count() == 0, timeout=30, what="the purged row to go")
    admin_tab.page.wait_for_selector(f'{box} a[href="#/tasks/{kept}"]')
    from helpers import dead_lettered

    left = dead_lettered(settings.media.dlq_name)
    assert kept in left and purged not in left
    drop_dead_letter(settings.media, kept)


def test_workers_panel_says_not_available_without_a_local_runtime(admin_tab: Any) -> None:
    from chalicelib.ops import local_runtime

    assert local_runtime.registered() is None  # the test process's API registers none
    admin_tab.go("#/workers")
    eventually(lambda: admin_tab.text("#workers-note").startswith("Not available"), timeout=20, what="the note")


def test_screenshot_of_the_dashboard(admin_tab: Any, paused_workers: Any, settings: Any, tmp_path: Any) -> None:
    """Taken by `make screenshot` into docs/dashboard.png (elsewhere into a temporary file): a backlog
    that builds up in three waves while the consumers are paused, then drains."""
    marker = dead_letter_marker(settings.default, "PermanentTaskError: unreadable image")
    baseline = _cell(admin_tab, "default", 2) or 0
    for wave in range(1, 4):
        for i in range(15):
            dashboard_ok.delay(i)
        eventually(lambda w=wave: (_cell(admin_tab, "default", 2) or 0) >= baseline + 15 * w, timeout=30, what="a wave")
        admin_tab.page.wait_for_timeout(3500)
    paused_workers.resume()
    eventually(lambda: _cell(admin_tab, "default", 2) == 0, timeout=60, what="the backlog to drain")
    admin_tab.page.wait_for_timeout(3500)
    path = admin_tab.page.locator('#chart-depth path[data-queue="default"]').get_attribute("d") or ""
    assert path.count("L") >= 4
    target = Path(os.environ.get("DASHBOARD_SCREENSHOT") or tmp_path / "dashboard.png")
    admin_tab.page.screenshot(path=str(target), full_page=True)
    assert target.stat().st_size > 10_000
    drop_dead_letter(settings.default, marker)


ISO_UTC = r"\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}Z"


def test_dashboard_with_a_trailing_slash_loads_the_page(tab: Any, keys: Any) -> None:
    """GIVEN `/dashboard/` WHEN opened THEN the page works (no asset is looked for under /dashboard/dashboard/)."""
    response = tab.page.goto(f"{tab.base_url}/dashboard/")
    assert response.status == 200 and response.url == f"{tab.base_url}/dashboard"
    tab.page.wait_for_selector("#login:not([hidden])")
    assert not any("/dashboard/dashboard/" in url for url in tab.urls)
    tab.page.fill("#key", keys["admin"])
    tab.page.click("#login-form button")
    tab.page.wait_for_selector("#queues-body tr")


def test_signing_out_ends_the_session_on_the_server(admin_tab: Any, base_url: Any) -> None:
    """GIVEN a signed-in tab WHEN it signs out THEN its old cookie no longer works, even sent again by hand."""
    import requests

    cookie = next(c for c in admin_tab.context.cookies() if c["name"] == "dashboard_session")["value"]
    session_url = f"{base_url}/dashboard/api/session"
    assert requests.get(session_url, headers={"Cookie": f"dashboard_session={cookie}"}, timeout=30).status_code == 200
    admin_tab.page.click("#logout")
    admin_tab.page.wait_for_selector("#login:not([hidden])")
    assert requests.get(session_url, headers={"Cookie": f"dashboard_session={cookie}"}, timeout=30).status_code == 401


def test_every_time_is_iso_utc(admin_tab: Any, workers: Any, api: Any) -> None:
    """GIVEN the queues and a task WHEN shown THEN times read like 2026-01-31T12:00:00Z, never a local 12-hour clock."""
    import re

    eventually(lambda: "updated" in admin_tab.text("#queues-updated"), timeout=20, what="the queues' time")
    assert re.fullmatch(f"updated {ISO_UTC}", admin_tab.text("#queues-updated").strip())
    task_id = dashboard_ok.delay(3)
    final_record(api, task_id)
    admin_tab.go("#/tasks?status=SUCCESS&name=tests.dashboard_ok")
    admin_tab.page.wait_for_selector(f'#tasks-body tr[data-task="{task_id}"]')
    created = admin_tab.text(f'#tasks-body tr[data-task="{task_id}"] td:nth-child(1) time')
    assert re.fullmatch(ISO_UTC, created), created
    age = admin_tab.text(f'#tasks-body tr[data-task="{task_id}"] td:nth-child(1) .age')
    assert re.fullmatch(r"\d+ (s|min|h|d) ago", age), age  # the relative age beside it
    admin_tab.go(f"#/tasks/{task_id}")
    admin_tab.page.wait_for_selector("#task-fields dd")
    fields = admin_tab.page.eval_on_selector_all(
        "#task-fields dt, #task-fields dd", "n => n.map(e => (e.querySelector('time') || e).textContent)"
    )
    shown = dict(zip(fields[::2], fields[1::2], strict=True))
    for name in ("Created", "Started", "Finished", "Updated"):
        assert re.fullmatch(ISO_UTC, shown[name]), (name, shown[name])
    assert not re.search(r"\b(AM|PM)\b", admin_tab.text("main"))


def test_the_task_page_shows_every_attempt(admin_tab: Any, workers: Any, api: Any) -> None:
    from dashboard_support import dashboard_flaky

    task_id = dashboard_flaky.delay(uuid.uuid4().hex, 1)
    eventually(lambda: (r := final_record(api, task_id)) and r["status"] == "SUCCESS", timeout=90, what="success")
    admin_tab.go(f"#/tasks/{task_id}")
    admin_tab.page.wait_for_selector('#task-history tr[data-attempt="2"]')
    assert "retried" in admin_tab.text('#task-history tr[data-attempt="1"]')
    assert "flaky attempt 1" in admin_tab.text('#task-history tr[data-attempt="1"]')
    assert "succeeded" in admin_tab.text('#task-history tr[data-attempt="2"]')
    assert task_id in admin_tab.text("#task-logs")


def test_run_again_is_not_offered_for_a_permanent_failure(admin_tab: Any, workers: Any, api: Any) -> None:
    """GIVEN a task that failed with a permanent error WHEN its page is shown THEN no "Run again", and why."""
    task_id = dashboard_permanent.delay(uuid.uuid4().hex)
    assert final_record(api, task_id)["status"] == "FAILURE"
    admin_tab.go(f"#/tasks/{task_id}")
    eventually(lambda: "permanently" in admin_tab.text("#task-error"), timeout=20, what="the explanation")
    assert admin_tab.page.locator("#task-rerun").is_hidden()


def test_a_new_task_and_its_status_change_appear_without_a_reload(admin_tab: Any, paused_workers: Any) -> None:
    """GIVEN the live task list WHEN a task is sent, then runs THEN its row appears, then turns SUCCESS, no reload."""
    admin_tab.go("#/tasks")
    admin_tab.page.wait_for_selector("#tasks-updated:not(:empty)")
    admin_tab.page.evaluate("window.__same_document = true")
    task_id = dashboard_ok.delay(11)
    admin_tab.page.wait_for_selector(f'#tasks-body tr[data-task="{task_id}"][data-status="PENDING"]', timeout=20_000)
    paused_workers.resume()
    admin_tab.page.wait_for_selector(f'#tasks-body tr[data-task="{task_id}"][data-status="SUCCESS"]', timeout=60_000)
    assert admin_tab.page.evaluate("window.__same_document") is True  # the page was never reloaded


def test_the_live_switch_pauses_the_list(admin_tab: Any, workers: Any, api: Any) -> None:
    admin_tab.go("#/tasks")
    admin_tab.page.wait_for_selector("#tasks-updated:not(:empty)")
    admin_tab.page.uncheck("#tasks-live")  # a refresh already on its way is dropped when it lands
    before = admin_tab.text("#tasks-updated")
    task_id = dashboard_ok.delay(12)
    final_record(api, task_id)
    admin_tab.page.wait_for_timeout(4000)  # longer than the live period
    assert admin_tab.page.locator(f'#tasks-body tr[data-task="{task_id}"]').count() == 0
    assert admin_tab.text("#tasks-updated") == before
    admin_tab.page.check("#tasks-live")
    admin_tab.page.wait_for_selector(f'#tasks-body tr[data-task="{task_id}"]')


def test_search_finds_a_partial_name_and_text_in_the_args(admin_tab: Any, workers: Any, api: Any) -> None:
    token = uuid.uuid4().hex
    task_id = dashboard_boom.delay(token)
    assert final_record(api, task_id)["status"] == "FAILURE"
    admin_tab.go("#/tasks")
    form = admin_tab.page.locator("#task-filter")
    form.locator('input[name="name"]').fill("board_bo")  # part of tests.dashboard_boom
    form.locator('input[name="q"]').fill(token[8:24])
    form.locator('button[type="submit"]').click()
    from playwright.sync_api import TimeoutError as PlaywrightTimeout

    row = f'#tasks-body tr[data-task="{task_id}"]'
    for _ in range(30):  # a page may end its bounded read before a match: search on
        if admin_tab.page.locator(row).count():
            break
        admin_tab.page.wait_for_selector("#tasks-more:not([hidden]), #tasks-body tr", timeout=20_000)
        if admin_tab.page.locator(row).count() or admin_tab.page.locator("#tasks-more").is_hidden():
            break
        try:  # a page still on its way may hide the button (no more to read) between the look and the click
            admin_tab.page.click("#tasks-more", timeout=5_000)
        except PlaywrightTimeout:
            continue
        admin_tab.page.wait_for_timeout(300)
    admin_tab.page.wait_for_selector(row)
    assert "boom for" in admin_tab.text(f"{row} td:nth-child(8)")
    names = admin_tab.page.eval_on_selector_all("#tasks-body tr td:nth-child(3)", "c => c.map(e => e.textContent)")
    assert set(names) == {"tests.dashboard_boom"}


def test_a_live_refresh_is_not_asked_again_while_it_is_on_its_way(admin_tab: Any) -> None:
    """A slow refresh (a search reads up to 600 records) is not asked again by the next ticks:
    they piled up on a loaded API. Once it lands, the live refresh goes on."""
    held: list[Any] = []
    released = False

    def is_list(url: str) -> bool:
        return "/dashboard/api/tasks?" in url

    def hold(route: Any) -> None:  # answered only once released
        if released:
            route.continue_()
        else:
            held.append(route)

    def asked() -> int:
        return sum(1 for url in admin_tab.urls if is_list(url))

    admin_tab.page.route(is_list, hold)
    admin_tab.go(f"#/tasks?q={uuid.uuid4().hex}")
    admin_tab.page.wait_for_timeout(10_000)  # three ticks of the live refresh (every 3 s)
    assert len(held) == 1, [route.request.url for route in held]
    released, before = True, asked()
    held[0].continue_()
    admin_tab.page.wait_for_function("() => document.getElementById('tasks-updated').textContent !== ''")
    admin_tab.page.wait_for_timeout(4_000)  # the next tick
    assert asked() > before
    admin_tab.page.unroute(is_list, hold)


def test_next_page_clicked_twice_reads_its_page_once(admin_tab: Any, paused_workers: Any) -> None:
    """A double click on "Next page" read the same cursor twice and appended its rows twice."""
    for i in range(60):  # more than two pages of one name (they wait in the queue: consumers paused)
        dashboard_ok.delay(i)
    admin_tab.go("#/tasks?name=tests.dashboard_ok")
    admin_tab.page.wait_for_selector("#tasks-more:not([hidden])")
    admin_tab.page.dblclick("#tasks-more")
    admin_tab.page.wait_for_function("() => document.querySelectorAll('#tasks-body tr').length > 25")
    admin_tab.page.wait_for_timeout(1_000)  # a second page read, if one was asked for, lands meanwhile
    shown = admin_tab.page.eval_on_selector_all("#tasks-body tr", "rows => rows.map(r => r.dataset.task)")
    assert len(shown) == 50 and len(set(shown)) == len(shown), shown


@pytest.mark.parametrize("view", ["#/queues", "#/tasks", "#/stats", "#/dead-letters", "#/workers", "#/audit"])
def test_the_phone_layout_fits_360_px(browser: Any, base_url: Any, keys: Any, view: Any) -> None:
    """GIVEN a 360 px wide screen WHEN each view is shown THEN nothing is wider than the screen."""
    phone = Dashboard(browser, base_url)
    phone.context.close()
    phone.context = browser.new_context(viewport={"width": 360, "height": 740}, is_mobile=True)
    phone.page = phone.context.new_page()
    try:
        phone.sign_in(keys["admin"])
        phone.page.wait_for_selector("#queues-body tr")
        phone.go(view)
        phone.page.wait_for_timeout(1500)
        width = phone.page.evaluate("document.documentElement.scrollWidth")
        assert width <= 360, f"{view} is {width} px wide"
    finally:
        phone.close()


def test_stats_appear_after_tasks_run_and_survive_a_reload(admin_tab: Any, workers: Any, api: Any) -> None:
    task_id = dashboard_ok.delay(21)
    final_record(api, task_id)
    admin_tab.go("#/stats?window=1h")
    row = '#stats-body tr[data-name="tests.dashboard_ok"]'
    admin_tab.page.wait_for_selector(row)
    assert int(admin_tab.text(f'{row} td[data-stat="succeeded"]')) >= 1
    admin_tab.page.wait_for_selector('#chart-outcomes path[data-queue="succeeded"]', state="attached")
    admin_tab.page.reload()
    admin_tab.page.wait_for_selector(row)  # from the server's buckets, not the tab
    admin_tab.go("#/queues")
    # attached, not "visible": an empty queue's line is flat (zero height); its points came from the server
    path = admin_tab.page.wait_for_selector('#chart-depth path[data-queue="default"]', state="attached")
    assert path is not None and (path.get_attribute("d") or "").count("L") >= 1


def test_deployed_views_say_they_read_cloudwatch_and_charts_survive_a_reload(
    cloudwatch_source: Any, admin_tab: Any, aws: Any, settings: Any
) -> None:
    """GIVEN metrics in CloudWatch as SQS and the workers publish them WHEN the Workers, Stats and
    Queues views are shown, and reloaded THEN each says it reads CloudWatch and draws its chart from it."""
    at = datetime.now(UTC) - timedelta(minutes=8)
    task = [
        {"Name": "service", "Value": settings.app_name},
        {"Name": "stage", "Value": settings.stage},
        {"Name": "task", "Value": "tests.dashboard_parent"},
    ]
    emf = [{"MetricName": "TaskSucceeded", "Dimensions": task, "Timestamp": at, "Value": 3}]
    emf += [{"MetricName": "TaskDuration", "Dimensions": task, "Timestamp": at, "Value": v} for v in (50.0, 70.0)]
    aws("cloudwatch").put_metric_data(Namespace="Bookshelf", MetricData=emf)
    queue = [{"Name": "QueueName", "Value": settings.default.name}]
    sqs = [
        {
            "MetricName": "ApproximateNumberOfMessagesVisible",
            "Dimensions": queue,
            "Timestamp": at - timedelta(minutes=m),
            "Value": 5.0 + m,
        }
        for m in range(3)
    ]
    aws("cloudwatch").put_metric_data(Namespace="AWS/SQS", MetricData=sqs)
    from chalicelib.dashboard import queue_metrics

    queue_metrics._cache.clear()  # the sign-in's look, before these were put, is cached a minute
    admin_tab.go("#/workers")
    eventually(lambda: admin_tab.text("#workers-note").startswith("CloudWatch, last"), timeout=20, what="the note")
    admin_tab.go("#/stats?window=1h")
    row = '#stats-body tr[data-name="tests.dashboard_parent"]'
    for _ in range(2):  # before and after a reload: the series is the server's, not the tab's
        admin_tab.page.wait_for_selector(row)
        assert int(admin_tab.text(f'{row} td[data-stat="succeeded"]')) >= 3
        admin_tab.page.wait_for_selector('#chart-outcomes path[data-queue="succeeded"]', state="attached")
        assert "from CloudWatch" in admin_tab.text("#stats-note")
        admin_tab.page.reload()
    admin_tab.go("#/queues")
    eventually(lambda: "CloudWatch AWS/SQS" in admin_tab.text("#depth-source"), timeout=20, what="the depth source")
    path = admin_tab.page.wait_for_selector('#chart-depth path[data-queue="default"]', state="attached")
    assert path is not None and (path.get_attribute("d") or "").count("L") >= 3  # three minutes from AWS/SQS


@pytest.fixture
def restored(settings: Any) -> Iterator[None]:
    """Every queue's consumers as configured again after the test, whatever it did."""
    yield
    from chalicelib.ops.consumers import ConsumerState, _key

    for queue in settings.queues.values():
        ConsumerState(_key(queue.name)).delete()


def test_pause_holds_covers_and_resume_finishes_them(admin_tab: Any, api: Any, workers: Any, restored: Any) -> None:
    from helpers import b64, jpeg_bytes, unique_author

    row = '#controls-body tr[data-queue="media"]'
    admin_tab.page.wait_for_selector(row)
    admin_tab.page.once("dialog", lambda dialog: dialog.accept())
    admin_tab.page.click(f"{row} button.toggle")
    admin_tab.page.wait_for_selector(f'{row}[data-paused="true"]')
    admin_tab.page.wait_for_timeout(2500)  # the runner looks at the wanted state once a second
    status, created = api.post("/books", {"title": "Held", "authors": [unique_author()], "cover": b64(jpeg_bytes())})
    assert status == 202
    admin_tab.page.wait_for_timeout(4000)
    statuses = {api.get(f"/tasks/{t}", user="admin")[1]["status"] for t in created["tasks"]}
    assert "PENDING" in statuses  # the media queue's tasks wait while its consumers are paused
    admin_tab.page.once("dialog", lambda dialog: dialog.accept())
    admin_tab.page.click(f"{row} button.toggle")
    admin_tab.page.wait_for_selector(f'{row}[data-paused="false"]')
    for task_id in created["tasks"]:
        assert final_record(api, task_id)["status"] == "SUCCESS"
    admin_tab.go("#/audit")
    admin_tab.page.wait_for_selector("#audit-body tr")
    log = admin_tab.text("#audit-body")
    assert "pause" in log and "resume" in log and "queue media" in log


def test_a_concurrency_change_takes_effect(admin_tab: Any, workers: Any, restored: Any) -> None:
    row = '#controls-body tr[data-queue="default"]'
    admin_tab.page.wait_for_selector(row)
    admin_tab.page.fill(f"{row} input.concurrency", "5")
    admin_tab.page.once("dialog", lambda dialog: dialog.accept())
    admin_tab.page.click(f"{row} button.set-concurrency")
    poller = next(p for p in workers.runner.pollers.values() if p.queue_name.endswith("default"))
    eventually(lambda: poller.concurrency == 5, timeout=15, what="the runner to take the new maximum")
    eventually(lambda: _cell(admin_tab, "default", 6) == 5, timeout=15, what="the queues table to show the new maximum")
    assert "max 5" in admin_tab.text(f"{row} .state")


def test_revoke_from_the_task_page_after_confirmation(admin_tab: Any, api: Any, paused_workers: Any) -> None:
    task_id = dashboard_ok.delay(41)
    admin_tab.go(f"#/tasks/{task_id}")
    admin_tab.page.wait_for_selector("#task-revoke:not([hidden])")
    admin_tab.page.once("dialog", lambda dialog: dialog.dismiss())
    admin_tab.page.click("#task-revoke")
    admin_tab.page.wait_for_timeout(500)
    assert api.get(f"/tasks/{task_id}", user="admin")[1]["status"] == "PENDING"  # dismissed: nothing done
    admin_tab.page.once("dialog", lambda dialog: dialog.accept())
    admin_tab.page.click("#task-revoke")
    eventually(lambda: "REVOKED" in admin_tab.text("#task-fields"), timeout=20, what="the revoked status")


def test_screenshot_of_every_page(
    admin_tab: Any, browser: Any, base_url: Any, keys: Any, workers: Any, api: Any, tmp_path: Any
) -> None:
    """Taken by `make screenshot` into docs/ beside dashboard.png (elsewhere into a temporary
    directory): the task list, a task with its attempts, stats, workers, audit, and a phone."""
    from dashboard_support import dashboard_flaky

    flaky = dashboard_flaky.delay(uuid.uuid4().hex, 1)
    for i in range(3):
        final_record(api, dashboard_ok.delay(i))
    eventually(lambda: (r := final_record(api, flaky)) and r["status"] == "SUCCESS", timeout=90, what="flaky")
    folder = Path(os.environ["DASHBOARD_SCREENSHOT"]).parent if os.environ.get("DASHBOARD_SCREENSHOT") else tmp_path
    pages = {
        "tasks": ("#/tasks", "#tasks-body tr"),
        "task": (f"#/tasks/{flaky}", '#task-history tr[data-attempt="2"]'),
        "stats": ("#/stats?window=1h", "#stats-body tr"),
        "workers": ("#/workers", "#workers-note:not(:empty)"),
        "audit": ("#/audit", "#audit-body"),
        "dead-letters": ("#/dead-letters", "#dl-queues .dlq"),
    }
    for name, (fragment, ready) in pages.items():
        admin_tab.go(fragment)
        admin_tab.page.wait_for_selector(ready, state="attached")
        admin_tab.page.wait_for_timeout(800)
        target = folder / f"dashboard-{name}.png"
        admin_tab.page.screenshot(path=str(target), full_page=True)
        assert target.stat().st_size > 5_000
    phone = browser.new_context(viewport={"width": 360, "height": 740}, is_mobile=True)
    try:
        page = phone.new_page()
        page.goto(f"{base_url}/dashboard#/tasks")
        page.fill("#key", keys["admin"])
        page.click("#login-form button")
        page.wait_for_selector("#tasks-body tr")
        page.screenshot(path=str(folder / "dashboard-phone.png"))
    finally:
        phone.close()


def test_the_task_page_shows_the_log_lines_of_each_attempt(
    admin_tab: Any, browser: Any, base_url: Any, keys: Any, api: Any
) -> None:
    """GIVEN a task that logs a line, run in the local runtime's sandboxes WHEN its page is shown
    THEN the attempt's lines (from CloudWatch Logs) show it, keyboard reachable, within 360 px."""
    from runtime_support import private_runner, send_task

    line = f"a line for the page {uuid.uuid4().hex[:8]}"
    with private_runner("--only", "default_worker") as (_runner, queues):
        task_id = send_task(queues["DEFAULT_QUEUE_NAME"], "tests.runtime.say", line)
        assert final_record(api, task_id)["status"] == "SUCCESS"
    logs = '#task-log-attempts pre[data-logs="1"]'
    for _ in range(10):  # the runner sends its lines in batches: reload the page until they are in
        admin_tab.go("#/tasks")
        admin_tab.go(f"#/tasks/{task_id}")
        admin_tab.page.wait_for_selector(f"{logs}:not(:empty)")
        eventually(lambda: "loading" not in admin_tab.text(logs), timeout=20, what="the lines")
        if line in admin_tab.text(logs):
            break
        admin_tab.page.wait_for_timeout(1000)
    text = admin_tab.text(logs)
    assert line in text and "START RequestId:" in text, text
    summary = admin_tab.page.locator('#task-log-attempts details[data-attempt-logs="1"] summary')
    summary.focus()
    admin_tab.page.keyboard.press("Enter")  # a <summary>: reached and toggled from the keyboard
    assert admin_tab.page.locator('#task-log-attempts details[data-attempt-logs="1"]').get_attribute("open") is None

    phone = browser.new_context(viewport={"width": 360, "height": 740}, is_mobile=True)
    try:
        page = phone.new_page()
        page.goto(f"{base_url}/dashboard")
        page.fill("#key", keys["admin"])
        page.click("#login-form button")
        page.wait_for_selector("#queues-body tr")
        page.evaluate("hash => { location.hash = hash; }", f"#/tasks/{task_id}")
        page.wait_for_selector(logs)
        eventually(lambda: "START" in (page.locator(logs).text_content() or ""), timeout=20, what="the phone's lines")
        width = page.evaluate("document.documentElement.scrollWidth")
        assert width <= 360, f"the task page is {width} px wide"
    finally:
        phone.close()
