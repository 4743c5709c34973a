"""group, chord and link/link_error over the emulator and the local event source runner.

The chord callback must run exactly once, with every member's result (failures marked),
whatever duplicates, retries and redrives happen in the middle.
"""

from __future__ import annotations

import time
import uuid
from typing import Any

from helpers import dead_lettered, eventually, final_record, task_record

from chalicelib.tasks import canvas
from chalicelib.tasks.canvas import chord, group
from chalicelib.tasks.chord_store import ChordItem, head_key
from chalicelib.tasks.decorator import task
from chalicelib.tasks.envelope import Envelope
from chalicelib.tasks.errors import PermanentTaskError, TransientTaskError

RUNS: dict[str, int] = {}
CALLS: dict[str, list[Any]] = {}


def _count(key: str) -> int:
    RUNS[key] = RUNS.get(key, 0) + 1
    return RUNS[key]


@task("tests.canvas.member", retry_backoff=False, default_retry_delay=1)
def member(marker: str, index: int, mode: str = "ok") -> dict[str, int]:
    run = _count(f"{marker}:{index}")
    if mode == "transient_once" and run == 1:
        raise TransientTaskError("first attempt fails")
    if mode == "fail_first_run" and run == 1:
        raise PermanentTaskError("no good the first time")
    if mode == "fail":
        raise PermanentTaskError("never good")
    return {"square": index * index}


@task("tests.canvas.collect")
def collect(results: list[dict[str, Any]], marker: str) -> int:
    CALLS.setdefault(marker, []).append(results)
    return len(results)


@task("tests.canvas.on_error")
def on_error(task_id: str, error: str, marker: str) -> None:
    CALLS.setdefault(marker, []).append({"task_id": task_id, "error": error})


def test_link_gets_the_result_and_link_error_the_failure(api: Any, workers: Any) -> None:
    marker = f"link-{uuid.uuid4()}"
    ok = member.apply_async(args=[marker, 3], link=collect.s(marker), link_error=on_error.s(marker + "-err"))
    bad = member.apply_async(args=[marker, 4, "fail"], link=collect.s(marker), link_error=on_error.s(marker + "-err"))
    eventually(lambda: len(CALLS.get(marker, [])) == 1 and len(CALLS.get(marker + "-err", [])) == 1, what="callbacks")
    assert CALLS[marker] == [{"square": 9}]
    (told,) = CALLS[marker + "-err"]
    assert told["task_id"] == bad and told["error"].startswith("permanent error: PermanentTaskError: never good")
    assert final_record(api, ok)["status"] == "SUCCESS"


def test_group_sends_every_task(api: Any, workers: Any) -> None:
    marker = f"group-{uuid.uuid4()}"
    sent = group(member.s(marker, i) for i in range(4)).apply_async()
    assert sent.get(timeout=60) == [{"square": i * i} for i in range(4)]


def test_chord_callback_runs_once_with_failures_marked(api: Any, workers: Any) -> None:
    marker = f"chord-{uuid.uuid4()}"
    modes = ["ok", "transient_once", "fail", "ok", "ok"]
    started = chord([member.s(marker, i, mode) for i, mode in enumerate(modes)], collect.s(marker)).apply_async()
    callback = final_record(api, started.callback_id)
    assert callback["status"] == "SUCCESS" and callback["result"] == 5
    (results,) = CALLS[marker]
    assert [r["status"] for r in results] == ["SUCCESS", "SUCCESS", "FAILURE", "SUCCESS", "SUCCESS"]
    assert results[1]["result"] == {"square": 1} and RUNS[f"{marker}:1"] == 2  # retried, counted once
    assert results[2]["result"] is None and "never good" in results[2]["error"]
    assert [r["task_id"] for r in results] == started.task_ids


def test_empty_chord_calls_back_at_once(api: Any, workers: Any) -> None:
    marker = f"empty-{uuid.uuid4()}"
    started = chord([], collect.s(marker)).apply_async()
    assert started.get(timeout=60) == 0
    assert CALLS[marker] == [[]]


def _resend(aws: Any, settings: Any, chord_id: str, task_ids: list[str], marker: str, modes: list[str]) -> None:
    from chalicelib.platform.sqs import queue_url

    for i, task_id in enumerate(task_ids):
        env = Envelope(
            task_id, "tests.canvas.member", [marker, i, modes[i]], links={"chord": {"id": chord_id, "index": i}}
        )
        aws("sqs").send_message(QueueUrl=queue_url(settings.default.name), MessageBody=env.encode())


def test_duplicates_retries_and_a_redrive_mid_chord_give_one_callback(
    api: Any, paused_workers: Any, aws: Any, settings: Any
) -> None:
    marker = f"redrive-{uuid.uuid4()}"
    modes = ["transient_once", "fail_first_run", "ok", "ok"]
    members = [member.s(marker, i, mode) for i, mode in enumerate(modes)]
    members[3] = member.s(marker, 3, "ok", countdown=8)  # keeps the chord open while the redrive happens
    started = chord(members, collect.s(marker)).apply_async()
    paused_workers.resume()
    failed_id = started.task_ids[1]
    eventually(lambda: failed_id in dead_lettered(settings.default.dlq_name), what="member 1 dead-lettered")
    # Mid-chord: member 3 is still delayed; duplicates of every member arrive, and the DLQ is redriven.
    assert task_record(api, started.task_ids[3])["status"] == "PENDING"
    _resend(aws, settings, started.id, started.task_ids, marker, modes)
    status, _ = api.post("/queues/default/redrive", user="admin")
    assert status == 202
    eventually(lambda: RUNS.get(f"{marker}:1") == 2, what="member 1 redriven and run again")
    # The body has run (RUNS counts at its start), its record is STARTED until the run is recorded.
    assert final_record(api, failed_id)["status"] == "SUCCESS"
    callback = final_record(api, started.callback_id, timeout=90)
    assert callback["status"] == "SUCCESS"
    # After the callback: more duplicates, of the members and of the callback itself.
    _resend(aws, settings, started.id, started.task_ids, marker, modes)
    unlock = Envelope(started.callback_id, canvas.UNLOCK_TASK, [started.id])
    from chalicelib.platform.sqs import queue_url

    aws("sqs").send_message(QueueUrl=queue_url(settings.default.name), MessageBody=unlock.encode())
    time.sleep(4)
    assert len(CALLS[marker]) == 1, "the chord callback ran more than once"
    (results,) = CALLS[marker]
    # The first final result of each member counts: member 1 had failed before it was redriven.
    assert [r["status"] for r in results] == ["SUCCESS", "FAILURE", "SUCCESS", "SUCCESS"]
    head = ChordItem.get(head_key(started.id), consistent_read=True)
    assert (head.total, head.done, head.members, head.dispatched) == (4, 4, {0, 1, 2, 3}, 1)


def test_a_revoked_member_is_marked_and_the_chord_still_calls_back(api: Any, workers: Any) -> None:
    marker = f"revoked-{uuid.uuid4()}"
    members = [member.s(marker, 0), member.s(marker, 1, countdown=600)]
    started = chord(members, collect.s(marker)).apply_async()
    eventually(lambda: task_record(api, started.task_ids[0])["status"] == "SUCCESS", what="member 0")
    status, body = api.post(f"/tasks/{started.task_ids[1]}/revoke", user="admin")
    assert status == 200 and body["status"] == "REVOKED"
    assert final_record(api, started.callback_id)["status"] == "SUCCESS"  # not 600 s later: told at revoke time
    (results,) = CALLS[marker]
    assert [r["status"] for r in results] == ["SUCCESS", "REVOKED"] and results[1]["error"] == "revoked"
    assert f"{marker}:1" not in RUNS


def test_a_member_the_redrive_policy_dead_lettered_is_counted_by_the_reconciler(
    api: Any, paused_workers: Any, chalice_client: Any, aws: Any, settings: Any
) -> None:
    from chalicelib.platform.sqs import queue_url
    from chalicelib.tasks import records

    marker = f"stranded-{uuid.uuid4()}"
    started = chord([member.s(marker, 0, countdown=900)], collect.s(marker)).apply_async()  # not delivered here
    # Every attempt crashed: the record stays STARTED under an ended lease, and SQS moved the message.
    env = Envelope(
        started.task_ids[0], "tests.canvas.member", [marker, 0, "ok"], links={"chord": {"id": started.id, "index": 0}}
    )
    assert records.claim(env, "default", -1).outcome == "claimed"
    aws("sqs").send_message(QueueUrl=queue_url(settings.default.dlq_name), MessageBody=env.encode())
    event = chalice_client.events.generate_cw_event(
        source="aws.events", detail_type="Scheduled Event", detail={}, resources=[]
    )
    chalice_client.lambda_.invoke("dead_letter_reconciler", event)
    paused_workers.resume()
    callback = final_record(api, started.callback_id)
    assert callback["status"] == "SUCCESS"
    (results,) = CALLS[marker]
    assert results[0]["status"] == "FAILURE" and "redrive policy" in results[0]["error"]
