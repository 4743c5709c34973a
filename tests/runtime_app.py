"""A test-only app module for the local runtime's sandboxes: the real app, test tasks and a probe.

The runner's sandboxes import it by name (`python -m devtools.runtime.runner --app tests.runtime_app`),
exactly as they import `app`; nothing shipped knows about it.

- `tests.runtime.sleep`, `tests.runtime.hog`, `tests.runtime.ok`, `tests.runtime.say`: tasks
  on the `default` queue that overrun a timeout, allocate memory, just succeed, or log a line.
- `probe_worker` (when RUNTIME_PROBE_QUEUE is set): an SQS handler that reports, for each
  message, its sandbox's pid, the invocations this sandbox has served, the remaining time and
  the receive count to the queue RUNTIME_PROBE_REPLIES, and obeys the message's `cmd`:
  `fail-once` (listed in batchItemFailures on its first receive), `invalid-once` (an invalid
  batchItemFailures response on its first receive), `sleep` (for `seconds`), anything else: ok.
"""

from __future__ import annotations

import json
import os
import time
from typing import Any, cast

from chalice.app import SQSEvent

# dead_letter_reconciler is made by beat.install when app.py is imported: mypy cannot see it.
from app import (  # type: ignore[attr-defined]  # noqa: F401 - the handlers to invoke
    app,
    dead_letter_reconciler,
    default_worker,
    media_worker,
)
from chalicelib.platform.aws import client
from chalicelib.platform.observability import logger
from chalicelib.tasks.decorator import task

_SANDBOX = {"invocations": 0}


@task("tests.runtime.sleep", max_retries=5)
def sleep_task(seconds: float) -> dict[str, float]:
    time.sleep(seconds)
    return {"slept": seconds}


@task("tests.runtime.hog", max_retries=5)
def hog_task(megabytes: int) -> int:
    block = b"x" * (megabytes * 1024 * 1024)  # touches every page: resident, not just reserved
    time.sleep(0.5)
    return len(block)


@task("tests.runtime.say")
def say_task(text: str) -> str:
    """Logs `text` (a Powertools JSON line, as the app's own logging does): the task-logs tests read it back."""
    logger.info(text)
    return text


@task("tests.runtime.ok")
def ok_task(value: int) -> dict[str, int]:
    return {"value": value}


def _reply(**fields: Any) -> None:
    url = client("sqs").get_queue_url(QueueName=os.environ["RUNTIME_PROBE_REPLIES"])["QueueUrl"]
    client("sqs").send_message(QueueUrl=url, MessageBody=json.dumps(fields))


PROBE_QUEUE = os.environ.get("RUNTIME_PROBE_QUEUE")

if PROBE_QUEUE:

    @app.on_sqs_message(queue=PROBE_QUEUE, batch_size=10, maximum_concurrency=2, name="probe_worker")
    def probe_worker(event: SQSEvent) -> dict[str, Any]:
        _SANDBOX["invocations"] += 1
        failures: list[dict[str, str]] = []
        for record in event:
            command = json.loads(record.body)
            raw = record.to_dict()
            receives = int(raw["attributes"].get("ApproximateReceiveCount", "1"))
            reply = {
                "id": command["id"],
                "pid": os.getpid(),
                "sandbox_invocations": _SANDBOX["invocations"],
                "remaining_ms": cast("Any", event.context).get_remaining_time_in_millis(),
                "receives": receives,
            }
            if command.get("cmd") == "sleep":
                _reply(**reply, phase="started")
                time.sleep(float(command["seconds"]))
            _reply(**reply, phase="done")
            if command.get("cmd") == "fail-once" and receives == 1:
                failures.append({"itemIdentifier": raw["messageId"]})
            if command.get("cmd") == "invalid-once" and receives == 1:
                failures.append({"itemIdentifier": "not-a-message-of-this-batch"})
        return {"batchItemFailures": failures}
