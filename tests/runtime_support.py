"""Real processes for the local runtime's tests: a runner subprocess on private queues."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import tempfile
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any, cast

import requests

ROOT = Path(__file__).resolve().parent.parent


def private_queues(visibility: int, max_receives: int) -> dict[str, str]:
    """Fresh media/default queue pairs (and probe queues) for one runner; returns their env settings."""
    from chalicelib.platform.aws import client
    from chalicelib.platform.config import QueueSettings
    from infra.local import create_queue_pair

    tag = f"{os.environ['RESOURCE_PREFIX']}-rt-{uuid.uuid4().hex[:6]}"
    env = {
        "DEFAULT_VISIBILITY_TIMEOUT": str(visibility),
        "MEDIA_VISIBILITY_TIMEOUT": str(visibility),
        "DEFAULT_MAX_RECEIVE_COUNT": str(max_receives),
        "MEDIA_MAX_RECEIVE_COUNT": str(max_receives),
        "RUNTIME_PROBE_QUEUE": f"{tag}-probe",
        "RUNTIME_PROBE_REPLIES": f"{tag}-replies",
    }
    for key in ("media", "default"):
        name = f"{tag}-{key}"
        env[f"{key.upper()}_QUEUE_NAME"], env[f"{key.upper()}_DLQ_NAME"] = name, f"{name}-dlq"
        create_queue_pair(QueueSettings(key, name, f"{name}-dlq", 10, 2, max_receives, visibility))
    sqs = client("sqs")
    sqs.create_queue(QueueName=env["RUNTIME_PROBE_QUEUE"], Attributes={"VisibilityTimeout": str(visibility)})
    sqs.create_queue(QueueName=env["RUNTIME_PROBE_REPLIES"])
    return env


class RunnerProcess:
    """`python -m devtools.runtime.runner --app tests.runtime_app` with sandboxes, on private queues."""

    def __init__(self, env: dict[str, str], args: list[str]) -> None:
        from devtools.emulator.process import free_port

        self.env = {**os.environ, **env}
        self.port = free_port()
        self.log = tempfile.NamedTemporaryFile(prefix="runner-", suffix=".log", delete=False)
        command = [sys.executable, "-m", "devtools.runtime.runner", "--app", "tests.runtime_app", "--wait-seconds", "1"]
        command += ["--stats-port", str(self.port), *args]
        self.proc = subprocess.Popen(command, cwd=ROOT, env=self.env, stdout=self.log, stderr=subprocess.STDOUT)

    def stats(self) -> dict[str, Any]:
        """The runner's `GET /stats` (empty until it serves)."""
        try:
            return cast(
                "dict[str, Any]", requests.get(f"http://127.0.0.1:{self.port}/stats", timeout=2).json()["functions"]
            )
        except requests.RequestException:
            return {}

    def output(self) -> str:
        return Path(self.log.name).read_text(errors="replace")

    def stop(self) -> None:
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(timeout=30)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        self.log.close()  # `output()` still reads it by name


@contextmanager
def private_runner(
    *args: str, visibility: int = 10, max_receives: int = 2
) -> Iterator[tuple[RunnerProcess, dict[str, str]]]:
    """A runner (sandboxes) on queues of its own, serving once this is entered; stopped on exit."""
    from helpers import eventually

    queues = private_queues(visibility, max_receives)
    runner = RunnerProcess(queues, list(args))
    try:
        eventually(runner.stats, timeout=60, what="the runner's /stats")
        yield runner, queues
    finally:
        runner.stop()
        Path(runner.log.name).unlink(missing_ok=True)


def send_task(queue_name: str, task_name: str, *args: Any) -> str:
    """A task's record and message, sent to `queue_name` (a private queue the session's settings do not know)."""
    from chalicelib.platform.aws import client
    from chalicelib.platform.sqs import queue_url
    from chalicelib.tasks import records
    from chalicelib.tasks.envelope import Envelope

    env = Envelope(task_id=str(uuid.uuid4()), task=task_name, args=list(args))
    records.create_pending(env, "default", "alice")
    client("sqs").send_message(QueueUrl=queue_url(queue_name), MessageBody=env.encode())
    return env.task_id


def send_probes(queue_name: str, commands: list[dict[str, Any]]) -> None:
    """Probe commands in one SendMessageBatch."""
    from chalicelib.platform.aws import client
    from chalicelib.platform.sqs import queue_url

    entries = [{"Id": str(i), "MessageBody": json.dumps(c)} for i, c in enumerate(commands)]
    client("sqs").send_message_batch(QueueUrl=queue_url(queue_name), Entries=entries)


class Replies:
    """Everything the probe reported so far (the reply queue is drained as it is read)."""

    def __init__(self, queue_name: str) -> None:
        self.queue_name = queue_name
        self.seen: list[dict[str, Any]] = []

    def read(self) -> list[dict[str, Any]]:
        from chalicelib.platform.aws import client
        from chalicelib.platform.sqs import delete_messages, queue_url

        messages = (
            client("sqs")
            .receive_message(QueueUrl=queue_url(self.queue_name), MaxNumberOfMessages=10, WaitTimeSeconds=1)
            .get("Messages", [])
        )
        self.seen += [json.loads(m["Body"]) for m in messages]
        if messages:
            delete_messages(self.queue_name, [m["ReceiptHandle"] for m in messages])
        return self.seen

    def of(self, probe_id: str, phase: str = "done") -> list[dict[str, Any]]:
        return [r for r in self.read() if r["id"] == probe_id and r["phase"] == phase]
