"""Task definitions and the registry of them by name.

Definitions only: sending lives in `tasks/dispatch.py`, which imports this module, so this
module never imports it back. A task gets its sender at declaration (`tasks/decorator.py`).
"""

from __future__ import annotations

import math
import time
import uuid
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime
from typing import Any

from chalicelib.platform.ratelimit import parse_rate
from chalicelib.tasks.backoff import MIN_DELAY_SECONDS, retry_delay
from chalicelib.tasks.errors import TransientTaskError, is_permanent
from chalicelib.tasks.result import AsyncResult
from chalicelib.tasks.subjects import book_id_of

DEFAULT_QUEUE = "default"
QUEUES = ("media", DEFAULT_QUEUE)

MAX_COUNTDOWN_SECONDS = 900  # SQS DelaySeconds limit: a longer countdown waits in the outbox (tasks/outbox.py)
MAX_ETA_SECONDS = 365 * 86_400  # the longest countdown or ETA accepted (a year)
MAX_VISIBILITY_SECONDS = 43_200  # SQS ChangeMessageVisibility limit (12 hours)
MAX_LAMBDA_TIMEOUT_SECONDS = 900


class UnknownTaskError(LookupError):
    """No task is registered under that name."""


@dataclass(frozen=True)
class FailureInfo:
    """Celery's `einfo`, adapted: why the record says FAILURE, and the traceback when the task raised."""

    reason: str
    traceback: str | None = None


#: Celery's `Task.on_failure(exc, task_id, args, kwargs, einfo)` as a function given to `@task`.
FailureHook = Callable[[BaseException, str, list[Any], dict[str, Any], FailureInfo], None]

#: Sends signatures and returns their task ids in order (`tasks.dispatch.dispatch`).
Sender = Callable[[Sequence["Signature"]], list[str]]


def _no_sender(signatures: Sequence[Signature]) -> list[str]:
    names = ", ".join(sorted({sig.task.name for sig in signatures}))
    raise RuntimeError(f"task {names} was not declared with @task, so it has no sender")


@dataclass(frozen=True)
class Signature:
    """A task call waiting to be dispatched (Celery's signature)."""

    task: Task
    args: tuple[Any, ...] = ()
    kwargs: dict[str, Any] = field(default_factory=dict)
    task_id: str = field(default_factory=lambda: str(uuid.uuid4()))
    countdown: int = 0
    #: What to tell when this task is final: "link" and "link_error" (lists of `as_link()`
    #: dicts) and "chord" ({"id", "index"}); carried in the envelope (tasks/canvas.py reads it).
    links: dict[str, Any] | None = None

    def as_link(self) -> dict[str, Any]:
        """This call as a callback to send later (JSON: it travels in the envelope)."""
        return {"task": self.task.name, "args": list(self.args), "kwargs": dict(self.kwargs)}

    def linked(self, **links: Any) -> Signature:
        """A copy that also tells `links` (Celery's `link=`/`link_error=`; None values are ignored)."""
        merged = dict(self.links or {})
        for key, value in links.items():
            if value is None:
                continue
            if key in ("link", "link_error"):
                callbacks = value if isinstance(value, list | tuple) else [value]
                merged[key] = [*merged.get(key, []), *(c.as_link() for c in callbacks)]
            else:
                merged[key] = value
        return replace(self, links=merged or None)

    def apply_async(self) -> AsyncResult:
        """Dispatch this call; returns the task id, as an AsyncResult (`.get(timeout=...)`)."""
        return AsyncResult(self.task.sender([self])[0])


@dataclass(frozen=True)
class Task:
    """A registered task and its options, named as Celery names them (celery/app/task.py).

    The options live on the task, not on each call. docs/TASKS.md "Task options" maps each one
    to Celery's and says where the two differ.
    """

    #: Name of the task (its record's `name`, what a worker looks up).
    name: str

    #: The function that runs.
    func: Callable[..., Any]

    #: Maximum number of retries before giving up; 0 = never retried. Unlike Celery, None
    #: (retry forever) is not allowed: the queue's maxReceiveCount bounds the attempts too, so
    #: a task runs at most min(max_retries + 1, maxReceiveCount) times.
    max_retries: int = 3

    #: Exception types that are retried. Unlike Celery (default: none, retry by hand), every
    #: Exception is retried by default, except the permanent ones (`dont_autoretry_for`,
    #: PermanentTaskError and the AWS error codes in tasks/errors.py).
    autoretry_for: tuple[type[BaseException], ...] = (Exception,)

    #: Exception types that fail the task at once, without retry.
    dont_autoretry_for: tuple[type[BaseException], ...] = ()

    #: Exponential backoff between retries: True = the stage's RETRY_BACKOFF_BASE seconds as the
    #: factor, a number = that factor in seconds, False = every retry waits `default_retry_delay`.
    #: Unlike Celery (default False), backoff is on by default.
    retry_backoff: bool | float = True

    #: Upper bound of a backoff delay in seconds; None = the stage's RETRY_BACKOFF_CAP.
    retry_backoff_max: int | None = None

    #: Full jitter: each delay is drawn uniformly from [1, backoff delay] (tasks/backoff.py).
    retry_jitter: bool = True

    #: Seconds between retries when `retry_backoff` is False (Celery's default: 3 minutes).
    default_retry_delay: int = 180

    #: Hard time limit in seconds. On Lambda the hard limit is the function's timeout, which kills
    #: the whole invocation; so the limit may not exceed it (checked by `make package` and
    #: `make deploy`, at most 900 at registration), and the worker does not start a task when the
    #: invocation has less time left than `time_limit`: the message comes back for a fresh one.
    time_limit: int | None = None

    #: Seconds after sending after which the task is not run any more: its record becomes FAILURE
    #: with reason "expired". Measured from the message's SentTimestamp (a countdown counts).
    expires: int | None = None

    #: Called once when the task fails for good, whatever the cause (Celery's `on_failure`): a
    #: permanent error, retries exhausted, expired, or a message the redrive policy moved to a
    #: DLQ (timeout, crash; found by the reconciler). `exc` is what the task raised, else a
    #: `DeadLettered`/`TaskExpired`; `einfo` has the recorded reason and traceback. It runs after
    #: the record says FAILURE; an exception from it is logged, never retried.
    on_failure: FailureHook | None = field(default=None, compare=False, repr=False)
    #: Runs allowed per second, minute or hour ("10/s", "100/m", "1000/h"; a bare number is per
    #: second), for ALL workers together, unlike Celery's (per worker instance). A run over the
    #: rate is put off to its slot, not failed, and does not count toward maxReceiveCount
    #: (tasks/throttle.py). None: no limit.
    rate_limit: str | None = None

    #: The routing key of the queue that runs it ("media" or "default"; Celery's `queue`
    #: option): declared with the task, so no list of names elsewhere can disagree.
    queue: str = DEFAULT_QUEUE

    #: True when the first positional argument is the id of the book the task works on (a
    #: `book_id=` keyword always is): its record is filed under the book (the book index).
    book_arg: bool = False

    #: How `delay`/`apply_async` send (injected by `@task`; not a Celery option).
    sender: Sender = field(default=_no_sender, compare=False, repr=False)

    def retries(self, exc: BaseException) -> bool:
        """True when `exc` is worth another attempt under this task's options."""
        if is_permanent(exc, self.dont_autoretry_for):
            return False
        return isinstance(exc, (TransientTaskError, *self.autoretry_for))

    def retry_delay(self, attempt: int, base: float, cap: float) -> int:
        """Seconds before the next attempt after failed attempt `attempt` (stage defaults given)."""
        limit = cap if self.retry_backoff_max is None else self.retry_backoff_max
        if self.retry_backoff is False:
            return max(MIN_DELAY_SECONDS, self.default_retry_delay)
        factor = base if self.retry_backoff is True else float(self.retry_backoff)
        return retry_delay(attempt, factor, limit, jitter=self.retry_jitter)

    def expired(self, age_seconds: float) -> bool:
        """True when a message this old must not run any more."""
        return self.expires is not None and age_seconds > self.expires

    def book_id(self, args: Sequence[Any], kwargs: dict[str, Any]) -> str | None:
        """The id of the book a call with these arguments works on, or None."""
        return book_id_of(args, kwargs, self.book_arg)

    def s(self, *args: Any, task_id: str | None = None, countdown: float = 0, **kwargs: Any) -> Signature:
        """A signature of this task with these arguments (`countdown`: seconds, up to a year)."""
        number = isinstance(countdown, int | float) and not isinstance(countdown, bool)
        if not number or not 0 <= countdown <= MAX_ETA_SECONDS:
            raise ValueError(f"countdown must be between 0 and {MAX_ETA_SECONDS} seconds (a year)")
        return Signature(self, tuple(args), dict(kwargs), task_id or str(uuid.uuid4()), math.ceil(countdown))

    def delay(self, *args: Any, **kwargs: Any) -> AsyncResult:
        """Dispatch now; returns the task id, as an AsyncResult."""
        return self.s(*args, **kwargs).apply_async()

    def apply_async(
        self,
        args: tuple[Any, ...] | list[Any] = (),
        kwargs: dict[str, Any] | None = None,
        countdown: float = 0,
        task_id: str | None = None,
        eta: datetime | None = None,
        link: Signature | Sequence[Signature] | None = None,
        link_error: Signature | Sequence[Signature] | None = None,
    ) -> AsyncResult:
        """Dispatch with options, Celery style; returns the task id.

        `countdown` (seconds) or `eta` (a datetime; naive means UTC, as Celery's default
        `enable_utc`) may lie up to a year ahead; past SQS's 15 minutes the task waits in the
        outbox's due index until the relay sends it (docs/TASKS.md "ETA and countdown").
        `link` callbacks are sent with this task's result as their first argument once it
        succeeds; `link_error` ones with (task id, error) once it fails or is revoked.
        """
        delay = countdown_until(eta) if eta is not None else countdown
        sig = self.s(*args, task_id=task_id, countdown=delay, **(kwargs or {}))
        return sig.linked(link=link, link_error=link_error).apply_async()

    def __call__(self, *args: Any, **kwargs: Any) -> Any:
        return self.func(*args, **kwargs)


def countdown_until(eta: datetime, now: float | None = None) -> int:
    """Whole seconds from now until `eta` (0 when it has passed); a naive `eta` is UTC."""
    moment = eta if eta.tzinfo is not None else eta.replace(tzinfo=UTC)
    return max(0, math.ceil(moment.timestamp() - (time.time() if now is None else now)))


_REGISTRY: dict[str, Task] = {}


def register(declared: Task) -> Task:
    """Register `declared` under its name (once; the same function again is a no-op).

    Refuses options that cannot work on Lambda and SQS.
    """
    check(declared)
    existing = _REGISTRY.get(declared.name)
    if existing is not None and existing.func is not declared.func:
        raise ValueError(f"task {declared.name!r} is already registered")
    _REGISTRY[declared.name] = declared
    return declared


def check(options: Task) -> None:
    """Refuse options that cannot work on Lambda and SQS, naming the task and the option."""
    problems = []
    if isinstance(options.max_retries, bool) or not isinstance(options.max_retries, int) or options.max_retries < 0:
        problems.append("max_retries must be an integer >= 0 (the queue's maxReceiveCount bounds it)")
    for option in ("autoretry_for", "dont_autoretry_for"):
        types = getattr(options, option)
        if not all(isinstance(t, type) and issubclass(t, BaseException) for t in types):
            problems.append(f"{option} must be a tuple of exception classes")
    if not isinstance(options.retry_backoff, bool) and not (
        isinstance(options.retry_backoff, int | float) and options.retry_backoff > 0
    ):
        problems.append("retry_backoff must be True, False or a number of seconds > 0")
    if options.retry_backoff_max is not None and not 1 <= options.retry_backoff_max <= MAX_VISIBILITY_SECONDS:
        problems.append(f"retry_backoff_max must be between 1 and {MAX_VISIBILITY_SECONDS} seconds (SQS visibility)")
    if not 0 <= options.default_retry_delay <= MAX_VISIBILITY_SECONDS:
        problems.append(f"default_retry_delay must be between 0 and {MAX_VISIBILITY_SECONDS} seconds")
    if options.time_limit is not None and not 1 <= options.time_limit <= MAX_LAMBDA_TIMEOUT_SECONDS:
        problems.append(f"time_limit must be between 1 and {MAX_LAMBDA_TIMEOUT_SECONDS} seconds (Lambda's limit)")
    if options.expires is not None and options.expires <= 0:
        problems.append("expires must be a number of seconds > 0")
    if options.queue not in QUEUES:
        problems.append(f"queue must be one of {', '.join(QUEUES)}")
    if options.rate_limit is not None:
        try:
            parse_rate(options.rate_limit)
        except ValueError as exc:
            problems.append(f"rate_limit: {exc}")
    if problems:
        raise ValueError(f"task {options.name!r}: " + "; ".join(problems))


def get_task(name: str) -> Task:
    """The task registered as `name`."""
    try:
        return _REGISTRY[name]
    except KeyError:
        raise UnknownTaskError(f"unknown task {name!r}") from None


def find_task(name: str) -> Task | None:
    """The task registered as `name` in this process, or None."""
    return _REGISTRY.get(name)


def registered_tasks() -> dict[str, Task]:
    """All registered tasks by name."""
    return dict(_REGISTRY)
