"""Pure logic of the task framework: envelope, backoff, error classes, registry, routing."""

from __future__ import annotations

import json
import random

import pytest
from botocore.exceptions import ClientError

from chalicelib import jobs  # noqa: F401 - registers the application tasks
from chalicelib.tasks.backoff import retry_delay
from chalicelib.tasks.envelope import ENVELOPE_VERSION, Envelope, EnvelopeError, decode
from chalicelib.tasks.errors import PermanentTaskError, TransientTaskError, is_permanent
from chalicelib.tasks.registry import UnknownTaskError, get_task, registered_tasks, task
from chalicelib.tasks.routes import TASK_ROUTES, queue_for


def test_envelope_round_trip() -> None:
    env = Envelope(task_id="t-1", task="mail.new_book", args=["b", "x@example.org"], kwargs={"k": 1})
    body = env.encode()
    assert json.loads(body)["v"] == ENVELOPE_VERSION
    assert decode(body) == env


@pytest.mark.parametrize(
    ("body", "reason"),
    [
        ("not json", "not JSON"),
        ("[1, 2]", "not a JSON object"),
        ('{"v": 2, "id": "a", "task": "t"}', "unsupported envelope version"),
        ('{"id": "a", "task": "t"}', "unsupported envelope version"),
        ('{"v": 1, "id": "", "task": "t"}', "'id'"),
        ('{"v": 1, "id": "a", "task": 5}', "'task'"),
        ('{"v": 1, "id": "a", "task": "t", "args": {}}', "'args'"),
        ('{"v": 1, "id": "a", "task": "t", "kwargs": []}', "'kwargs'"),
        ('{"v": 1, "id": "a", "task": "t", "attempt": 0}', "'attempt'"),
        ('{"v": 1, "id": "a", "task": "t", "attempt": true}', "'attempt'"),
    ],
)
def test_decode_names_what_is_wrong(body: str, reason: str) -> None:
    with pytest.raises(EnvelopeError, match=reason):
        decode(body)


def test_oversized_envelope_is_refused() -> None:
    with pytest.raises(EnvelopeError, match="larger than"):
        Envelope(task_id="t", task="x", args=["a" * 300_000]).encode()


def test_backoff_grows_exponentially_within_cap() -> None:
    rng = random.Random(7)
    ceilings = [min(60.0, 5 * 2 ** (n - 1)) for n in range(1, 9)]
    for attempt, ceiling in enumerate(ceilings, start=1):
        for _ in range(50):
            delay = retry_delay(attempt, base=5, cap=60, rng=rng)
            assert max(1, round(ceiling / 2)) <= delay <= ceiling
    assert retry_delay(1, base=0.1, cap=5, rng=rng) == 1  # never below one second
    assert retry_delay(50, base=5, cap=900, rng=rng) <= 900


def _client_error(code: str) -> ClientError:
    return ClientError({"Error": {"Code": code, "Message": "m"}}, "SendEmail")


def test_permanent_and_transient_errors() -> None:
    assert is_permanent(PermanentTaskError("x"))
    assert not is_permanent(TransientTaskError("x"))
    assert is_permanent(_client_error("MessageRejected"))
    assert is_permanent(_client_error("AccessDenied"))
    assert not is_permanent(_client_error("Throttling"))
    assert not is_permanent(_client_error("ServiceUnavailable"))
    assert not is_permanent(TimeoutError())
    assert is_permanent(KeyError("k"), permanent=(KeyError,))


def test_registry_and_routes() -> None:
    assert get_task("covers.resize").queue == "media"
    assert get_task("mail.new_book").queue == "default"
    assert queue_for("anything.else") == "default"
    assert set(TASK_ROUTES.values()) <= {"media", "default"}
    assert {"covers.resize", "books.notify_subscribers", "mail.new_book"} <= set(registered_tasks())
    with pytest.raises(UnknownTaskError):
        get_task("no.such.task")


def test_a_name_is_registered_once() -> None:
    @task("tests.units.once")
    def first() -> int:
        return 1

    with pytest.raises(ValueError, match="already registered"):

        @task("tests.units.once")
        def second() -> int:
            return 2

    assert first() == 1


def test_countdown_is_bounded_by_sqs_delay() -> None:
    resize = get_task("covers.resize")
    assert resize.s("b", 1, countdown=900).countdown == 900
    with pytest.raises(ValueError, match="countdown"):
        resize.s("b", 1, countdown=901)
