"""The local runtime as Lambda runs functions: sandboxes, timeouts, memory, crashes and batch responses.

Each test starts the runner as a real process (`python -m devtools.runtime.runner`, sandboxes) on
queues of its own, with the test-only app module `tests/runtime_app.py`.
"""

from __future__ import annotations

import os
import signal
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from helpers import eventually, final_record
from runtime_support import Replies, RunnerProcess, private_queues, send_probes, send_task

from chalicelib.ops.queues import depth
from devtools.runtime.runner import batch_item_failures, settle
from devtools.runtime.sandbox import Invocation


@pytest.fixture
def start_runner() -> Iterator[Any]:
    started: list[RunnerProcess] = []

    def start(
        *args: str, visibility: int = 3, max_receives: int = 2, **env: str
    ) -> tuple[RunnerProcess, dict[str, str]]:
        queues = {**private_queues(visibility, max_receives), **env}
        runner = RunnerProcess(queues, list(args))
        started.append(runner)
        eventually(runner.stats, timeout=60, what="the runner's /stats")
        return runner, queues

    yield start
    for runner in started:
        runner.stop()
        Path(runner.log.name).unlink(missing_ok=True)


def test_a_task_past_its_timeout_is_killed_and_ends_in_the_dlq_marked_timed_out(api: Any, start_runner: Any) -> None:
    runner, queues = start_runner(
        "--only", "default_worker", "--only", "dead_letter_reconciler",
        "--timeout", "default_worker=2", "--schedule-seconds", "2",
    )  # fmt: skip
    task_id = send_task(queues["DEFAULT_QUEUE_NAME"], "tests.runtime.sleep", 30)

    record = final_record(api, task_id, timeout=120)
    assert record["status"] == "FAILURE"
    assert "timed out" in record["error"]
    assert depth(queues["DEFAULT_DLQ_NAME"]).visible == 1
    stats = runner.stats()["default_worker"]
    assert stats["timeouts"] >= 1 and stats["errors"] >= stats["timeouts"]
    assert stats["timeout_seconds"] == 2
    assert "default_worker" in runner.output() and "Task timed out after 2.00 seconds" in runner.output()


def test_a_task_past_the_memory_limit_fails_only_its_invocation(api: Any, start_runner: Any) -> None:
    runner, queues = start_runner("--only", "default_worker", "--memory", "default_worker=256", visibility=20)
    hog = send_task(queues["DEFAULT_QUEUE_NAME"], "tests.runtime.hog", 400)
    eventually(lambda: runner.stats()["default_worker"]["errors"] >= 1, timeout=60, what="the out-of-memory error")
    assert "Runtime.OutOfMemory" in runner.output()

    after = send_task(queues["DEFAULT_QUEUE_NAME"], "tests.runtime.ok", 7)
    assert final_record(api, after, timeout=60)["status"] == "SUCCESS"
    assert api.get(f"/tasks/{hog}", user="admin")[1]["status"] != "SUCCESS"
    assert runner.stats()["default_worker"]["memory_mb"] == 256


def test_sandboxes_are_reused_while_warm_and_the_remaining_time_is_true(start_runner: Any) -> None:
    runner, queues = start_runner("--only", "probe_worker", "--timeout", "probe_worker=7")
    replies = Replies(queues["RUNTIME_PROBE_REPLIES"])
    send_probes(queues["RUNTIME_PROBE_QUEUE"], [{"id": "first"}])
    first = eventually(lambda: replies.of("first"), timeout=60, what="first reply")[0]
    send_probes(queues["RUNTIME_PROBE_QUEUE"], [{"id": "second"}])
    second = eventually(lambda: replies.of("second"), timeout=60, what="second reply")[0]

    warm = [r for r in (first, second) if r["sandbox_invocations"] > 1]
    assert warm, "a second invocation reuses a warm sandbox (module state kept)"
    assert any(r["pid"] == first["pid"] for r in warm) or second["pid"] != first["pid"]
    for reply in (first, second):
        assert 0 < reply["remaining_ms"] <= 7000
    assert runner.stats()["probe_worker"]["warm_sandboxes"] >= 1


def test_an_idle_sandbox_is_reclaimed_and_the_next_invocation_starts_cold(start_runner: Any) -> None:
    # 30 s of visibility: a cold start slower than the default 3 s (a loaded machine) would have the
    # message delivered again, and that second run would be the new sandbox's first invocation.
    runner, queues = start_runner("--only", "probe_worker", "--sandbox-idle-seconds", "2", visibility=30)
    replies = Replies(queues["RUNTIME_PROBE_REPLIES"])
    send_probes(queues["RUNTIME_PROBE_QUEUE"], [{"id": "before"}])
    before = eventually(lambda: replies.of("before"), timeout=60, what="the first reply")[0]
    eventually(lambda: runner.stats()["probe_worker"]["warm_sandboxes"] == 0, timeout=30, what="the idle sandbox gone")
    eventually(lambda: not _alive(before["pid"]), timeout=10, what="its process ended")
    assert "reclaimed after 2 s idle" in runner.output()

    send_probes(queues["RUNTIME_PROBE_QUEUE"], [{"id": "after"}])
    after = eventually(lambda: replies.of("after"), timeout=60, what="the reply after the idle time")[0]
    assert after["pid"] != before["pid"] and after["sandbox_invocations"] == 1  # a cold start


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    return True


def test_a_killed_sandbox_fails_its_invocation_only_and_the_work_completes(start_runner: Any) -> None:
    runner, queues = start_runner("--only", "probe_worker", visibility=3, max_receives=5)
    replies = Replies(queues["RUNTIME_PROBE_REPLIES"])
    send_probes(queues["RUNTIME_PROBE_QUEUE"], [{"id": "slow", "cmd": "sleep", "seconds": 2}])
    started = eventually(lambda: replies.of("slow", "started"), timeout=60, what="the probe to start")[0]

    os.kill(started["pid"], signal.SIGKILL)

    done = eventually(lambda: replies.of("slow"), timeout=60, what="the retried probe to finish")[0]
    assert done["pid"] != started["pid"] and done["receives"] == 2
    assert runner.stats()["probe_worker"]["errors"] == 1
    assert "Runtime exited with error: signal: kill" in runner.output()
    assert runner.proc.poll() is None


@pytest.mark.parametrize("report", [True, False], ids=["ReportBatchItemFailures", "legacy"])
def test_a_partial_batch_returns_only_the_failed_message(start_runner: Any, report: bool) -> None:
    env = {"REPORT_BATCH_ITEM_FAILURES": str(report).lower()}
    # The messages are queued before the runner starts, so they arrive as one batch.
    queues = private_queues(10, 5)  # longer than a cold start under load, so nothing returns early
    send_probes(queues["RUNTIME_PROBE_QUEUE"], [{"id": "a"}, {"id": "b", "cmd": "fail-once"}, {"id": "c"}])
    runner = RunnerProcess({**queues, **env}, ["--only", "probe_worker"])
    try:
        replies = Replies(queues["RUNTIME_PROBE_REPLIES"])
        again = ["b"] if report else []

        def first_and_again() -> tuple[list[str], list[str]]:
            seen = replies.read()
            return sorted(r["id"] for r in seen if r["receives"] == 1), sorted(
                r["id"] for r in seen if r["receives"] > 1
            )

        eventually(lambda: first_and_again() == (["a", "b", "c"], again), timeout=60, what="each message handled")
        eventually(lambda: (d := depth(queues["RUNTIME_PROBE_QUEUE"])).visible + d.in_flight == 0, what="queue empty")
        assert first_and_again() == (["a", "b", "c"], again)  # and nothing can come back: the queue is empty
        assert runner.stats()["probe_worker"]["errors"] == 0
        if not report:
            assert "Lambda ignores them and deletes the whole batch" in runner.output()
    finally:
        runner.stop()


def test_an_invalid_batch_response_returns_the_whole_batch(start_runner: Any) -> None:
    queues = private_queues(10, 5)  # longer than a cold start under load, so nothing returns early
    send_probes(queues["RUNTIME_PROBE_QUEUE"], [{"id": "a"}, {"id": "b", "cmd": "invalid-once"}])
    runner = RunnerProcess(queues, ["--only", "probe_worker"])
    try:
        replies = Replies(queues["RUNTIME_PROBE_REPLIES"])
        eventually(lambda: len(replies.of("a")) == 2 and len(replies.of("b")) == 2, timeout=60, what="both back")
        assert "invalid batchItemFailures response" in runner.output()
    finally:
        runner.stop()


# ---------------------------------------------------------------- Lambda's rules, as pure functions


def _ok(result: Any) -> Invocation:
    return Invocation("ok", "r", 1.0, result)


@pytest.mark.parametrize(
    ("result", "kept"),
    [
        (None, []),
        ({}, []),
        ({"batchItemFailures": None}, []),
        ({"batchItemFailures": []}, []),
        ({"handled": 2}, []),
        ({"batchItemFailures": [{"itemIdentifier": "m2"}]}, ["m2"]),
        ({"batchItemFailures": [{"itemIdentifier": ""}]}, None),
        ({"batchItemFailures": [{"itemIdentifier": None}]}, None),
        ({"batchItemFailures": [{"itemId": "m2"}]}, None),
        ({"batchItemFailures": [{"itemIdentifier": "elsewhere"}]}, None),
        ({"batchItemFailures": "m2"}, None),
        ("m2", None),
        ([{"itemIdentifier": "m2"}], None),
    ],
)
def test_batch_item_failures_follow_lambdas_rules(result: Any, kept: list[str] | None) -> None:
    assert batch_item_failures(result, ["m1", "m2", "m3"]) == kept


def test_settle_deletes_per_mode_and_never_after_a_failed_invocation() -> None:
    partial = _ok({"batchItemFailures": [{"itemIdentifier": "m2"}]})
    assert settle(partial, ["m1", "m2"], True).delete == ["m1"]
    legacy = settle(partial, ["m1", "m2"], False)
    assert legacy.delete == ["m1", "m2"] and "deletes the whole batch" in (legacy.note or "")
    assert settle(_ok({"batchItemFailures": [{"itemIdentifier": "x"}]}), ["m1"], True).delete == []
    for status in ("error", "timeout", "crash", "oom"):
        failed = Invocation(status, "r", 1.0)
        assert settle(failed, ["m1"], True).delete == [] and settle(failed, ["m1"], False).delete == []


@pytest.fixture
def no_local_runtime() -> Iterator[None]:
    """Whatever a test registers as the app's local runtime is gone after it."""
    from chalicelib.ops import local_runtime

    before = local_runtime.use(None)
    yield
    local_runtime.use(before)


def test_queues_show_the_runners_counters_when_a_runner_serves_them(settings: Any, no_local_runtime: None) -> None:
    from chalicelib.ops import local_runtime, queues
    from devtools.runtime.stats import FunctionStats, RuntimeStats, StatsServer
    from devtools.runtime.stats_client import RunnerStats

    stats = RuntimeStats()
    worker = stats.add("default_worker", FunctionStats(settings.default.name, 10, 10, 30.0, 512))
    worker.record(Invocation("ok", "r1", 12.0, None))
    worker.record(Invocation("timeout", "r2", 30000.0))
    server = StatsServer(stats).start()
    try:
        local_runtime.use(RunnerStats(server.url))  # what `make run`'s API process does at start
        by_queue = {q["queue"]: q for q in queues.overview()}
    finally:
        server.stop()
    runtime = by_queue["default"]["runtime"]
    assert runtime["function"] == "default_worker" and runtime["invocations"] == 2
    assert runtime["errors"] == 1 and runtime["timeouts"] == 1 and runtime["p95_ms"] == 30000.0
    assert by_queue["media"]["runtime"] is None  # no function of that runner consumes it

    assert all(q["runtime"] is None for q in queues.overview())  # stopped: the listing still answers
    local_runtime.use(None)
    assert all("runtime" not in q for q in queues.overview())  # on AWS: no key at all


def test_the_supervisor_restarts_with_growing_backoff_and_stops_on_an_essential_death() -> None:
    import sys
    import time

    from devtools.runtime.supervisor import Child, Supervisor

    said: list[str] = []
    supervisor = Supervisor(say=said.append)
    flaky = supervisor.add(Child("flaky", [sys.executable, "-c", "raise SystemExit(3)"]))
    essential = supervisor.add(
        Child("essential", [sys.executable, "-c", "import time; time.sleep(60)"], essential=True)
    )
    try:
        eventually(
            lambda: supervisor.check() is None and flaky.restarts >= 3, timeout=60, interval=0.05, what="3 restarts"
        )
        delays = [float(line.split("restarting in ")[1].split(" s")[0]) for line in said if "restarting in" in line]
        assert delays[:3] == [0.5, 1.0, 2.0] and "exit status 3" in said[0]
        assert essential.proc is not None
        essential.proc.kill()
        died = eventually(supervisor.check, timeout=10, interval=0.05, what="the essential child's death")
        assert died is essential and "stopping everything" in said[-1]
    finally:
        started = time.monotonic()
        supervisor.stop()
    assert all(c.proc is not None and c.proc.poll() is not None for c in supervisor.children)
    assert time.monotonic() - started < 15
