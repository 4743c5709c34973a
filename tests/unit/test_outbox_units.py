"""The outbox's rules that need no AWS: the staged flag in the envelope, a staged claim never
creating its record, and the relay's lease. Failures at every step of a send are in
tests/functional/test_outbox_launch.py."""

from __future__ import annotations

import pytest

from chalicelib.platform.config import get_settings
from chalicelib.tasks import outbox, records
from chalicelib.tasks.envelope import Envelope, decode
from chalicelib.tasks.store import MemoryTaskStore


def _setting(monkeypatch: pytest.MonkeyPatch, name: str, value: str) -> None:
    """Set one setting for the test (read again at once, as in test_data_integrity's `relay_soon`)."""
    monkeypatch.setenv(name, value)
    get_settings.cache_clear()
    get_settings()


@pytest.mark.unit
def test_the_relay_lease_doubles_with_the_age_up_to_its_cap(monkeypatch: pytest.MonkeyPatch) -> None:
    """A 10-minute backlog with every acknowledgement lost: re-sends at 1, 2, 4 and 8 minutes."""
    _setting(monkeypatch, "OUTBOX_RELAY_AFTER_SECONDS", "60")
    moments, due = [], 60
    while due <= 600:
        moments.append(due)
        due += outbox.relay_backoff(due)
    assert moments == [60, 120, 240, 480]
    assert outbox.relay_backoff(10_000) == outbox.RELAY_BACKOFF_CAP_SECONDS
    monkeypatch.delenv("OUTBOX_RELAY_AFTER_SECONDS")
    get_settings.cache_clear()


@pytest.mark.unit
def test_a_lease_is_never_shorter_than_its_backoff() -> None:
    """The relay takes records due by the whole second it runs in (`outbox_due <= int(now)`), so a
    lease written late in a second must still last its backoff (it ended at once: failed in a run)."""
    for now in (1_000.0, 1_000.001, 1_000.5, 1_000.996, 1_000.999999):
        for age in (0.0, 1.7, 90.0, 10_000.0):
            due = outbox.lease_due(now, age)
            backoff = outbox.relay_backoff(age)
            assert due >= now + backoff, (now, age, due)
            assert int(now + backoff - 1e-9) < due  # not due for a relay run before the backoff is over
            assert due <= now + backoff + 1  # and not a second longer


@pytest.mark.unit
def test_a_staged_claim_never_creates_its_record() -> None:
    store = MemoryTaskStore()
    machine = records.TaskRecords(store)
    staged = Envelope(task_id="t-staged", task="tests.launch.noop", args=[1], staged=True)
    assert machine.claim(staged, "default", 60).outcome == "absent"
    assert store.items == {}
    machine.create_pending(staged, "default", "alice", outbox=True)
    assert machine.claim(staged, "default", 60).outcome == "claimed"
    assert "outbox_shard" not in store.items["t-staged"]  # the claim took it out of the outbox
    unstaged = Envelope(task_id="t-plain", task="tests.launch.noop")
    assert machine.claim(unstaged, "default", 60).outcome == "claimed"  # other producers' messages


@pytest.mark.unit
def test_the_staged_flag_survives_the_envelope() -> None:
    staged = Envelope(task_id="t-1", task="tests.launch.noop", staged=True)
    assert decode(staged.encode()).staged is True
    assert "staged" not in Envelope(task_id="t-1", task="tests.launch.noop").encode()
