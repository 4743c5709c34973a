"""The request path sends a book's tasks while its transaction commits (issue 24, item 1).

The outbox guarantee with failures at every step: the commit, the send, the
acknowledgement (failed, or never run), and a worker that receives a message before its
record is committed. Over HTTP to the emulator, with faults injected at its endpoint.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator
from typing import Any, cast

import pytest
from helpers import b64, eventually, final_record, jpeg_bytes, unique_author, unique_email
from mailtools import seed_confirmed

from chalicelib.platform.config import get_settings
from chalicelib.platform.transactions import transaction
from chalicelib.tasks import outbox, worker
from chalicelib.tasks.decorator import task
from chalicelib.tasks.envelope import Envelope
from chalicelib.tasks.models import TaskRecord


@task("tests.launch.noop")
def noop(value: int) -> dict[str, int]:
    return {"value": value}


def _setting(monkeypatch: pytest.MonkeyPatch, name: str, value: str) -> None:
    """Set one setting for the test (read again at once, as in test_data_integrity's `relay_soon`)."""
    monkeypatch.setenv(name, value)
    get_settings.cache_clear()
    get_settings()


@pytest.fixture
def short_waits(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    """The relay takes tasks after 1 s, a worker waits 3 s for a record to be committed."""
    _setting(monkeypatch, "OUTBOX_RELAY_AFTER_SECONDS", "1")
    _setting(monkeypatch, "OUTBOX_AWAIT_COMMIT_SECONDS", "3")
    yield
    monkeypatch.delenv("OUTBOX_RELAY_AFTER_SECONDS")
    monkeypatch.delenv("OUTBOX_AWAIT_COMMIT_SECONDS")
    get_settings.cache_clear()
    get_settings()


@pytest.fixture
def launches(monkeypatch: pytest.MonkeyPatch) -> list[outbox.Launch]:
    """Every `outbox.Launch` the requests start (a spy: the sends still go out)."""
    seen: list[outbox.Launch] = []
    original = outbox.Launch.__init__

    def spied(self: outbox.Launch, messages: Any) -> None:
        original(self, messages)
        seen.append(self)

    monkeypatch.setattr(outbox.Launch, "__init__", spied)
    return seen


@pytest.fixture
def waits(monkeypatch: pytest.MonkeyPatch) -> list[str]:
    """What the workers did with staged messages whose record they did not find."""
    seen: list[str] = []
    original = worker._await_commit

    def spied(*args: Any) -> str:
        try:
            outcome = original(*args)
        except worker.TaskDeferred:
            seen.append("deferred")
            raise
        seen.append(outcome)
        return outcome

    monkeypatch.setattr(worker, "_await_commit", spied)
    return seen


def _run_relay(app_module: Any) -> dict[str, int]:
    from chalice.local import LambdaContext

    from devtools.runtime.runner import scheduled_event

    context = LambdaContext("outbox_relay", 256, max_runtime_ms=60_000)
    return cast("dict[str, int]", app_module.outbox_relay(scheduled_event("outbox_relay", "us-east-1"), context))


def _marked(task_id: str) -> bool:
    return TaskRecord.get(task_id, consistent_read=True).outbox_shard is not None


def _exists(task_id: str) -> bool:
    try:
        TaskRecord.get(task_id, consistent_read=True)
    except TaskRecord.DoesNotExist:
        return False
    return True


def _subscribed(tag: str) -> tuple[str, str]:
    """An author with one confirmed subscriber (written straight to the table)."""
    author, email = unique_author(tag), unique_email(tag.lower())
    seed_confirmed(author, email)
    return author, email


def _new_book_mails(mailbox: Any, email: str, title: str) -> list[dict[str, Any]]:
    return [m for m in mailbox.messages(to=email) if f"New book: {title}" in (m.get("RawData") or "")[:2000]]


def _pooled() -> bool:
    return threading.current_thread().name.startswith("outbox")


def test_the_request_sends_while_it_commits_and_acknowledges_off_its_path(
    api: Any, paused_workers: Any, monkeypatch: Any
) -> None:
    """SendMessageBatch starts before TransactWriteItems has answered (the old path sent after
    the commit, then acknowledged, in the request's thread); the markers are cleared after."""
    from botocore.client import BaseClient

    events: list[tuple[str, str, bool]] = []
    lock = threading.Lock()
    original = BaseClient._make_api_call

    def observed(client: Any, operation: str, params: dict[str, Any]) -> Any:
        with lock:
            events.append(("start", operation, _pooled()))
        try:
            return original(client, operation, params)
        finally:
            with lock:
                events.append(("end", operation, _pooled()))

    body = {
        "title": "Concurrent",
        "authors": [unique_author()],
        "cover_upload": {"content_type": "image/jpeg", "size": 9},
    }
    api.post("/books", body)  # queue URLs resolved once
    monkeypatch.setattr(BaseClient, "_make_api_call", observed)
    status, payload = api.post("/books", body)
    with lock:
        answered = list(events)
    monkeypatch.setattr(BaseClient, "_make_api_call", original)
    assert status == 202, payload
    committed = answered.index(("end", "TransactWriteItems", False))
    assert answered.index(("start", "SendMessageBatch", True)) < committed
    # The request's own thread makes one call; the acknowledgement runs in the outbox's
    # threads, unawaited (it may start before the client has read the answer).
    assert [op for kind, op, pooled in answered if kind == "start" and not pooled] == ["TransactWriteItems"]
    _, *sent = payload["tasks"]  # the ingest task waits for S3's message, not SQS's
    for task_id in sent:
        eventually(lambda task_id=task_id: not _marked(task_id), timeout=10, what="acknowledged")


def test_a_failed_commit_runs_nothing_it_sent(
    api: Any, workers: Any, faults: Any, mailbox: Any, launches: Any, waits: Any, short_waits: Any
) -> None:
    """The messages went out, but no record was committed: workers wait, then drop them."""
    author, email = _subscribed("Aborted")
    faults.add(service="dynamodb", action="TransactWriteItems", code="ServiceUnavailable", status=503)
    status, body = api.post("/books", {"title": "Never", "authors": [author], "cover": b64(jpeg_bytes(200, 200))})
    faults.clear()
    assert status == 503 and body["error"] == "ServiceUnavailable"
    assert len(launches) == 1
    task_ids = [m.envelope.task_id for m in launches[0].messages]
    assert len(task_ids) == 2  # resize and notify were both sent
    eventually(lambda: waits.count("aborted") >= 2, timeout=30, what="both messages dropped")
    assert "deferred" in waits  # each was looked at again before it was dropped
    assert not any(_exists(task_id) for task_id in task_ids)  # no worker created a record
    assert _new_book_mails(mailbox, email, "Never") == []


@pytest.mark.parametrize("step", ["acknowledgement fails", "acknowledgement never runs"])
def test_a_lost_acknowledgement_sends_again_and_runs_once(
    api: Any,
    paused_workers: Any,
    faults: Any,
    mailbox: Any,
    app_module: Any,
    short_waits: Any,
    monkeypatch: Any,
    step: Any,
) -> None:
    author, email = _subscribed("Unacked")
    if step == "acknowledgement never runs":  # e.g. a Lambda frozen after its answer, then reclaimed
        monkeypatch.setattr(outbox, "ACK_WINDOW_SECONDS", -1.0)
    else:  # the request's own transaction passes; every later DynamoDB write fails for a while
        faults.add(service="dynamodb", action="TransactWriteItems", pattern=[False] + [True] * 50, times=51)
        faults.add(service="dynamodb", action="UpdateItem")
    status, first = api.post("/books", {"title": "Unacked", "authors": [author], "cover": b64(jpeg_bytes(300, 200))})
    assert status == 202, first
    if step == "acknowledgement fails":

        def failed_writes() -> int:
            return sum(f["failed"] for f in faults.listing() if f["action"] == "UpdateItem")

        eventually(lambda: failed_writes() >= 2, timeout=30, what="both acknowledgements failed")
        last, quiet_since = failed_writes(), time.monotonic()
        while time.monotonic() - quiet_since < 3.0:  # until their retries have ended
            time.sleep(0.25)
            if (now := failed_writes()) != last:
                last, quiet_since = now, time.monotonic()
        faults.clear()
    assert all(_marked(task_id) for task_id in first["tasks"])
    time.sleep(1.5)  # the records become due
    result = _run_relay(app_module)
    assert result["relayed"] >= 2  # a second message for each task
    paused_workers.resume()
    book_id = first["book"]["id"]
    eventually(lambda: api.get(f"/books/{book_id}", user=None)[1]["cover_status"] == "ready", timeout=60, what="cover")
    assert eventually(lambda: _new_book_mails(mailbox, email, "Unacked"), timeout=60, what="mail")
    for task_id in first["tasks"]:
        record = final_record(api, task_id)
        assert record["status"] == "SUCCESS" and record["attempts"] == 1
    time.sleep(2.0)  # the duplicates are handled too
    assert len(_new_book_mails(mailbox, email, "Unacked")) == 1


def test_a_worker_waits_for_a_commit_that_lands_after_the_message(
    api: Any, workers: Any, waits: Any, short_waits: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    # The commit must land within the wait that follows the first look; on a loaded machine the
    # 3 s of `short_waits` were once not enough between the poll below and the commit.
    _setting(monkeypatch, "OUTBOX_AWAIT_COMMIT_SECONDS", "15")
    sig = noop.s(7)
    staged = Envelope(task_id=sig.task_id, task=sig.task.name, args=[7], staged=True)
    launch = outbox.Launch([outbox.Outgoing(staged, sig.task.queue)])
    eventually(lambda: "deferred" in waits, timeout=20, what="a worker found no record")
    assert not _exists(sig.task_id)
    with transaction() as tx:  # the commit lands after the worker's first look
        outbox.stage(tx, [sig], "alice", concurrent=True)
    assert launch.committed() == 1
    record = final_record(api, sig.task_id)
    assert record["status"] == "SUCCESS" and record["result"] == {"value": 7}
    assert "aborted" not in waits


def test_a_stranded_task_is_sent_again_once_per_lease_whatever_fails(
    api: Any, paused_workers: Any, faults: Any, short_waits: Any, monkeypatch: Any
) -> None:
    """Relay runs while DynamoDB refuses writes send nothing (they could not record it); a
    re-send whose acknowledgement is lost is not sent again by the next run (every minute, in a
    backlog), only once its lease (its age, at least OUTBOX_RELAY_AFTER_SECONDS) is over. The
    old relay sent it again on every run until a write landed: ten a task in 10 minutes."""
    sent: list[str] = []
    original = outbox.send

    def spied(messages: Any, batch_ack: bool = False) -> int:
        sent.extend(m.envelope.task_id for m in messages if m.envelope.task_id == sig.task_id)
        return original(messages, batch_ack)

    monkeypatch.setattr(outbox, "send", spied)

    def _relay() -> None:  # the relay itself: the scheduled handler's own lock is an UpdateItem too
        outbox.relay(lambda: 60_000)

    # What earlier tests of this worker left stranded is relayed first: the faults below count
    # UpdateItem calls in order, and another task's lease and acknowledgement would take this
    # task's turns (failed in a rehearsal: another test's task took the failing acknowledgement).
    sig = noop.s(3)
    time.sleep(1.5)  # anything staged before now is due
    _relay()
    assert sent == []
    with transaction() as tx:  # committed, never sent: stranded in the outbox
        outbox.stage(tx, [sig], "alice")
    time.sleep(1.5)  # due for the relay
    refused = {"service": "dynamodb", "action": "UpdateItem", "code": "ValidationException", "status": 400}
    faults.add(**refused)  # every DynamoDB update fails (no retry: a 400)
    _relay()
    _relay()
    faults.clear()
    assert sent == [] and _marked(sig.task_id)
    faults.add(**refused, pattern=[False, True], times=2)  # the lease is written, the acknowledgement fails
    _relay()
    assert sent == [sig.task_id] and _marked(sig.task_id)
    faults.clear()
    _relay()  # the next run, at once: its lease is not over
    assert sent == [sig.task_id]
    due = TaskRecord.get(sig.task_id, consistent_read=True).outbox_due
    time.sleep(max(0.0, due - time.time()) + 1.1)
    _relay()  # the lease is over: sent again, and acknowledged this time
    assert sent == [sig.task_id, sig.task_id] and not _marked(sig.task_id)
    paused_workers.resume()
    record = final_record(api, sig.task_id)
    assert record["status"] == "SUCCESS" and record["attempts"] == 1
