"""Failures on the deployed stack: a poison message is dead-lettered and redriven through the API;
a task past its function's timeout is killed by the runtime and retried."""

from __future__ import annotations

import uuid
from pathlib import Path
from typing import Any

from support import Api, Target, eventually, unique


def _queue_url(aws: Any, name: str) -> str:
    return str(aws("sqs").get_queue_url(QueueName=name)["QueueUrl"])


def _peek(aws: Any, url: str, marker: str) -> list[dict[str, Any]]:
    """Messages in `url` whose body holds `marker`, left visible (visibility timeout 0)."""
    sqs, found = aws("sqs"), []
    for _ in range(5):
        got = sqs.receive_message(
            QueueUrl=url, MaxNumberOfMessages=10, VisibilityTimeout=0, MessageAttributeNames=["All"], WaitTimeSeconds=1
        ).get("Messages", [])
        found += [m for m in got if marker in m["Body"]]
    return list({m["MessageId"]: m for m in found}.values())


def test_poison_message_goes_to_the_dlq_and_is_redriven(api: Api, aws: Any, target: Target) -> None:
    marker = f"poison-{uuid.uuid4().hex}"
    queue, dlq = _queue_url(aws, target.name("default")), _queue_url(aws, target.name("default-dlq"))
    aws("sqs").send_message(QueueUrl=queue, MessageBody=f'{{"not": "an envelope", "marker": "{marker}"}}')
    first = eventually(lambda: _peek(aws, dlq, marker), timeout=90, what="the poison message in the DLQ")
    assert len(first) == 1, first
    reason = first[0].get("MessageAttributes", {}).get("failure-reason", {}).get("StringValue", "")
    assert reason, first[0]

    status, answer = api.post("/queues/default/redrive", user="ops")
    assert status == 202, answer
    assert answer.get("moved", 0) >= 1 or answer.get("task_handle"), answer
    # Moved back to its queue, consumed again, and dead-lettered again (it is still poison): a new message.
    again = eventually(
        lambda: [m for m in _peek(aws, dlq, marker) if m["MessageId"] != first[0]["MessageId"]],
        timeout=90,
        what="the redriven poison message back in the DLQ",
    )
    assert len(again) == 1 and not [m for m in _peek(aws, dlq, marker) if m["MessageId"] == first[0]["MessageId"]]


def _slow_png() -> bytes:
    """A 7000 x 7000 interlaced 16-bit RGBA PNG (about 440 KB) that takes over a second to thumbnail.

    Interlacing (Adam7) keeps libvips from streaming the decode and shrinking as it reads, and 16-bit
    RGBA quadruples the pixels' bytes: 1.3-1.4 s here against 0.26 s for the 8-bit gradient PNG
    this used before the PNG path moved to libvips (which then finished inside the 1 s timeout).
    """
    import pyvips  # type: ignore[import-untyped]  # the test environment has it: requirements.txt (the media worker's PNG path)

    x = pyvips.Image.xyz(7000, 7000)[0].cast("ushort")
    image = x.bandjoin([x, x, x]).copy(interpretation="rgb16")
    return bytes(image.pngsave_buffer(interlace=True, compression=9, bitdepth=16, filter="up"))


def test_task_past_its_function_timeout_is_killed_and_retried(api: Api, aws: Any, target: Target) -> None:
    lam, worker = aws("lambda"), target.name("media_worker")
    sqs, queue = aws("sqs"), _queue_url(aws, target.name("media"))
    configured = lam.get_function_configuration(FunctionName=worker)["Timeout"]
    visibility = sqs.get_queue_attributes(QueueUrl=queue, AttributeNames=["VisibilityTimeout"])["Attributes"]
    status, created = api.post("/books", {"title": "Slow", "authors": [unique("Slow")]})
    assert status == 202, created
    book_id = created["book"]["id"]
    log = Path(target.log)
    offset = log.stat().st_size
    # A 1 s timeout kills the resize; a 15 s visibility timeout brings its message back at once, while the
    # killed attempt still holds the task's lease (the stage's visibility timeout): the task waits for it
    # to run out, then runs again. Both settings are restored once the kill is seen.
    lam.update_function_configuration(FunctionName=worker, Timeout=1)
    sqs.set_queue_attributes(QueueUrl=queue, Attributes={"VisibilityTimeout": "15"})
    try:
        status, answer = api.put(f"/books/{book_id}/cover", data=_slow_png(), content_type="image/png")
        assert status == 202, answer
        (task_id,) = answer["tasks"]

        def killed() -> bool:
            with log.open("rb") as f:
                f.seek(offset)
                text = f.read().decode(errors="replace")
            return f"Lambda {worker} timed out after 1s" in text

        eventually(killed, timeout=120, what=f"{worker} killed at its 1 s timeout")
    finally:
        lam.update_function_configuration(FunctionName=worker, Timeout=configured)
        sqs.set_queue_attributes(QueueUrl=queue, Attributes=visibility)
    # The killed invocation deleted nothing: the message comes back after the queue's visibility timeout.
    book = api.ready(book_id, timeout=240)
    assert book["cover_status"] == "ready"
    assert api.task(task_id)["attempts"] >= 2  # the killed attempt, then the one that finished
