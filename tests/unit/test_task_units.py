"""Pure logic of the task framework: envelope, backoff, error classes, registry, routing."""

from __future__ import annotations

import json
import random
import uuid
from typing import Any

import pytest
from botocore.exceptions import ClientError

from chalicelib import app_tasks  # noqa: F401 - registers the application tasks
from chalicelib.tasks.backoff import retry_delay
from chalicelib.tasks.decorator import task
from chalicelib.tasks.envelope import ENVELOPE_VERSION, Envelope, EnvelopeError, decode
from chalicelib.tasks.errors import PermanentTaskError, TransientTaskError, is_permanent
from chalicelib.tasks.registry import Task, UnknownTaskError, get_task, registered_tasks

pytestmark = pytest.mark.unit  # pure logic: no AWS endpoint is started for these tests


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
            assert 1 <= delay <= ceiling
        assert retry_delay(attempt, base=5, cap=60, jitter=False) == ceiling
    assert retry_delay(1, base=0.1, cap=5, rng=rng) == 1  # never below one second
    assert retry_delay(50, base=5, cap=900, rng=rng) <= 900


def test_backoff_uses_full_jitter_over_the_whole_window() -> None:
    """Full jitter (Celery, AWS): uniform in [0, ceiling], floored at one second; not ceiling/2 .. ceiling."""
    rng = random.Random(11)
    draws = [retry_delay(4, base=5, cap=900, rng=rng) for _ in range(4000)]  # ceiling 40
    assert min(draws) == 1 and max(draws) == 40
    assert sum(d < 20 for d in draws) > 1500  # about half the draws fall in the lower half
    assert 18 < sum(draws) / len(draws) < 22  # mean of uniform 0..40 (0 floored to 1): about 20.5


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
    declared = [name for name in registered_tasks() if not name.startswith("tests.")]  # not other test files' tasks
    assert {name for name in declared if get_task(name).queue == "media"} == {
        "covers.resize",
        "covers.ingest_upload",
        "covers.ingest_uploads",
    }  # declared with the task (`@task(queue=...)`), no routing table to disagree with
    with pytest.raises(ValueError, match="queue must be one of media, default"):
        task("tests.nowhere", queue="slow")
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


def test_countdown_is_bounded_by_a_year_not_by_sqs_delay() -> None:
    resize = get_task("covers.resize")
    assert resize.s("b", 1, countdown=900).countdown == 900
    assert resize.s("b", 1, countdown=3600.2).countdown == 3601  # past SQS's 900 s: the outbox parks it
    assert resize.s("b", 1, countdown=365 * 86_400).countdown == 365 * 86_400
    for bad in (365 * 86_400 + 1, -1, True):
        with pytest.raises(ValueError, match="countdown"):
            resize.s("b", 1, countdown=bad)


def _options(**options: Any) -> Task:
    @task(f"tests.units.options.{uuid.uuid4().hex}", **options)
    def run() -> None:
        return None

    return run


def test_task_options_have_celery_names_and_defaults() -> None:
    t = _options()
    assert (t.max_retries, t.autoretry_for, t.dont_autoretry_for) == (3, (Exception,), ())
    assert (t.retry_backoff, t.retry_backoff_max, t.retry_jitter) == (True, None, True)
    assert (t.time_limit, t.expires, t.default_retry_delay) == (None, None, 180)


def test_autoretry_for_and_dont_autoretry_for_choose_what_is_retried() -> None:
    t = _options(autoretry_for=(ConnectionError,), dont_autoretry_for=(ConnectionResetError,))
    assert t.retries(ConnectionError("x"))
    assert not t.retries(ConnectionResetError("x"))  # dont_autoretry_for wins
    assert not t.retries(ValueError("x"))  # not in autoretry_for
    assert t.retries(TransientTaskError("x"))  # explicitly transient: always retried
    assert not t.retries(PermanentTaskError("x")) and not t.retries(_client_error("AccessDenied"))
    everything = _options()
    assert everything.retries(ValueError("x")) and everything.retries(_client_error("Throttling"))
    with pytest.raises(TypeError):  # the legacy name `permanent=` is gone: dont_autoretry_for only
        _options(permanent=(KeyError,))
    assert not _options(dont_autoretry_for=(KeyError,)).retries(KeyError())


def test_retry_backoff_options_shape_the_delay() -> None:
    fixed = _options(retry_backoff=False, default_retry_delay=42)
    assert {fixed.retry_delay(n, base=5, cap=900) for n in range(1, 6)} == {42}
    no_jitter = _options(retry_backoff=3, retry_jitter=False)
    assert [no_jitter.retry_delay(n, base=5, cap=900) for n in range(1, 5)] == [3, 6, 12, 24]
    capped = _options(retry_jitter=False, retry_backoff_max=20)
    assert [capped.retry_delay(n, base=5, cap=900) for n in range(1, 6)] == [5, 10, 20, 20, 20]
    stage_default = _options(retry_jitter=False)
    assert stage_default.retry_delay(3, base=2, cap=900) == 8
    jittered = _options(retry_backoff_max=30)
    assert all(1 <= jittered.retry_delay(n, base=5, cap=900) <= 30 for n in range(1, 10) for _ in range(20))


def test_expires_is_measured_from_sending() -> None:
    t = _options(expires=60)
    assert not t.expired(59.9) and t.expired(60.1)
    assert not _options().expired(10**9)


@pytest.mark.parametrize(
    ("options", "message"),
    [
        ({"time_limit": 901}, "time_limit"),
        ({"time_limit": 0}, "time_limit"),
        ({"max_retries": -1}, "max_retries"),
        ({"max_retries": None}, "max_retries"),
        ({"expires": 0}, "expires"),
        ({"retry_backoff": "fast"}, "retry_backoff"),
        ({"retry_backoff_max": 50_000}, "retry_backoff_max"),
        ({"autoretry_for": ("ValueError",)}, "autoretry_for"),
        ({"default_retry_delay": -1}, "default_retry_delay"),
    ],
)
def test_options_that_cannot_work_on_lambda_are_refused_at_registration(options: dict[str, Any], message: str) -> None:
    with pytest.raises(ValueError, match=message):
        _options(**options)


def test_on_failure_gets_celerys_arguments_and_its_own_error_is_only_logged() -> None:
    from chalicelib.tasks.errors import DeadLettered
    from chalicelib.tasks.failures import task_failed
    from chalicelib.tasks.registry import FailureInfo

    calls: list[tuple[Any, ...]] = []

    def hook(exc: BaseException, task_id: str, args: list[Any], kwargs: dict[str, Any], einfo: FailureInfo) -> None:
        calls.append((type(exc).__name__, task_id, args, kwargs, einfo.reason))
        raise RuntimeError("the hook broke")  # logged, never raised into the worker

    t = _options(on_failure=hook)
    task_failed(t, "t-1", ("book", 2), {"k": 1}, DeadLettered("moved"), FailureInfo("moved"))
    assert calls == [("DeadLettered", "t-1", ["book", 2], {"k": 1}, "moved")]
    task_failed(_options(), "t-2", (), {}, DeadLettered("moved"), FailureInfo("moved"))  # no hook: nothing
    assert get_task("covers.resize").on_failure is not None
    assert get_task("covers.ingest_upload").on_failure is not None
    assert get_task("subscriptions.send_confirmation").on_failure is not None
