"""Messages that are not task envelopes (S3's upload notifications) reach the framework through
adapters the producing side registers, so the task framework imports no domain."""

from __future__ import annotations

import json
import subprocess
import sys
import uuid
from pathlib import Path

import pytest
from helpers import s3_notification

from chalicelib.covers.upload.events import INGEST_TASK, ingest_task_id, upload_key
from chalicelib.covers.upload.tasks import INGEST_MANY_TASK, adapt_s3_notification
from chalicelib.tasks import adapters
from chalicelib.tasks.envelope import Envelope, EnvelopeError

ROOT = Path(__file__).resolve().parents[2]


@pytest.mark.unit
def test_an_envelope_is_read_as_itself_and_an_upload_notification_as_its_ingest_task() -> None:
    env = Envelope(task_id="t-1", task="covers.resize", args=["b", 1])
    assert adapters.read(env.encode()) == env
    key = upload_key(str(uuid.uuid4()), 2)
    ingest = adapters.read(s3_notification(key))
    assert isinstance(ingest, Envelope)
    assert (ingest.task, ingest.task_id, ingest.args) == (INGEST_TASK, ingest_task_id("media", key), ["media", key])
    test_event = json.dumps({"Service": "Amazon S3", "Event": "s3:TestEvent", "Bucket": "media"})
    assert adapters.read(test_event) is adapters.NOTHING_TO_DO


@pytest.mark.unit
def test_a_dead_lettered_notification_of_several_uploads_names_the_task_that_ran() -> None:
    """The worker runs such a message as one fan-out task under a derived id; the reconciler and
    the dashboard name that same task, not a second `sqs-<message id>` one."""
    body = s3_notification(upload_key(str(uuid.uuid4()), 1), upload_key(str(uuid.uuid4()), 1))
    ran = adapters.read(body)
    assert isinstance(ran, Envelope) and ran.task == INGEST_MANY_TASK
    assert adapters.identity(body, "m-1") == (ran.task_id, INGEST_MANY_TASK)
    assert adapters.identity("not json", "m-1") == ("sqs-m-1", "<unreadable>")


@pytest.mark.unit
def test_without_the_adapter_a_notification_is_not_an_envelope(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(adapters, "_ADAPTERS", [])
    with pytest.raises(EnvelopeError):
        adapters.read(s3_notification(upload_key(str(uuid.uuid4()), 1)))


@pytest.mark.unit
def test_registering_twice_asks_once() -> None:
    before = adapters.registered()
    adapters.register(adapt_s3_notification)
    assert adapters.registered() == before and before.count(adapt_s3_notification) == 1


@pytest.mark.unit
def test_importing_the_app_registers_the_upload_adapter_in_a_fresh_process() -> None:
    """Every function (and the local runner's sandboxes) loads `app`; the adapter must come with it."""
    script = (
        "import app\n"
        "from chalicelib.tasks import adapters\n"
        "print(sorted(f'{a.__module__}.{a.__name__}' for a in adapters.registered()))\n"
    )
    done = subprocess.run([sys.executable, "-c", script], cwd=ROOT, capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr[-3000:]
    assert done.stdout.strip().splitlines()[-1] == "['chalicelib.covers.upload.tasks.adapt_s3_notification']"
