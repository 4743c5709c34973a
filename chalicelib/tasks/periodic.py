"""Periodic tasks declared in code (Celery beat's schedule), each an EventBridge schedule.

`@periodic_task(cron="0 3 * * *")` or `@periodic_task(rate="5 minutes")` registers a function;
`tasks/beat.py` makes each one a Chalice `@app.schedule` function, so `chalice deploy`, the
packaged CloudFormation template and `make run`'s runner all run it. A run takes a lease in
the task table first (`control#periodic#<name>`, as long as the function may run): a run
that would overlap the previous one (EventBridge delivers at least once, and a slow run may
outlast its period) is skipped and counted, and the last run's outcome is kept for
`GET /schedules`.
"""

from __future__ import annotations

import math
import time
import traceback
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from pynamodb.exceptions import UpdateError

from chalicelib.platform import deadline
from chalicelib.platform.dynamodb import condition_failed
from chalicelib.platform.observability import emit, logger
from chalicelib.tasks.control import PREFIX, TaskControl
from chalicelib.tasks.schedules import cron_expression, rate_expression
from chalicelib.tasks.states import TaskStatus

NO_CONTEXT_LEASE_SECONDS = 900  # Lambda's longest timeout, when no context says how long
_NAME_CHARS = frozenset("abcdefghijklmnopqrstuvwxyz0123456789_")


@dataclass(frozen=True)
class PeriodicTask:
    """A function run on a schedule; `name` is also its Lambda function's name."""

    name: str
    func: Callable[[], Any]
    #: A 5-field Unix cron (UTC), or None.
    cron: str | None = None
    #: "5 minutes", or a function giving it (read when the app is built: settings are not read
    #: at import), or None.
    rate: str | Callable[[], str] | None = None

    def expression(self) -> str:
        """The EventBridge schedule expression."""
        if self.cron is not None:
            return cron_expression(self.cron)
        assert self.rate is not None
        return rate_expression(self.rate() if callable(self.rate) else self.rate)

    @property
    def key(self) -> str:
        return f"{PREFIX}periodic#{self.name}"


_PERIODIC: dict[str, PeriodicTask] = {}


def periodic_task(
    name: str, *, cron: str | None = None, rate: str | Callable[[], str] | None = None
) -> Callable[[Callable[[], Any]], Callable[[], Any]]:
    """Run the decorated function on a schedule: `cron` (Unix, UTC) or `rate` ("5 minutes").

    `name` is a Python identifier (it names the Lambda function, as Chalice's `@app.schedule`
    names). A bad cron or rate string is refused here, when the module is imported.
    """
    if (cron is None) == (rate is None):
        raise ValueError(f"periodic task {name!r}: give exactly one of cron= and rate=")
    if not (name and name[0].isalpha() and set(name) <= _NAME_CHARS and len(name) <= 40):
        raise ValueError(f"periodic task {name!r}: the name must be a lowercase identifier of at most 40 characters")
    if cron is not None:
        cron_expression(cron)
    elif isinstance(rate, str):
        rate_expression(rate)

    def declare(func: Callable[[], Any]) -> Callable[[], Any]:
        existing = _PERIODIC.get(name)
        if existing is not None and existing.func is not func:
            raise ValueError(f"periodic task {name!r} is already registered")
        _PERIODIC[name] = PeriodicTask(name, func, cron, rate)
        return func

    return declare


def registered_periodic() -> dict[str, PeriodicTask]:
    """Every periodic task by name."""
    return dict(_PERIODIC)


def _now() -> datetime:
    return datetime.now(UTC)


def _lease_seconds(context: Any) -> int:
    """The function's timeout, as far as it can be known: the time this invocation has left."""
    remaining = getattr(context, "get_remaining_time_in_millis", None)
    return math.ceil(remaining() / 1000) if callable(remaining) else NO_CONTEXT_LEASE_SECONDS


def acquire(periodic: PeriodicTask, lease_seconds: int, now: float | None = None) -> str | None:
    """Take the run's lease (one conditional UpdateItem); its token, or None while another run holds it."""
    moment = time.time() if now is None else now
    token = uuid.uuid4().hex
    try:
        TaskControl(periodic.key).update(
            actions=[
                TaskControl.lease_until.set(int(moment) + lease_seconds),
                TaskControl.lease_token.set(token),
                TaskControl.schedule.set(periodic.expression()),
                TaskControl.last_run_at.set(datetime.fromtimestamp(moment, UTC)),
                TaskControl.runs.add(1),
            ],
            condition=TaskControl.lease_until.does_not_exist() | (TaskControl.lease_until < int(moment)),
        )
    except UpdateError as exc:
        if condition_failed(exc):
            return None
        raise
    return token


def _record_skip(periodic: PeriodicTask) -> None:
    TaskControl(periodic.key).update(
        actions=[TaskControl.skipped.add(1), TaskControl.last_skipped_at.set(_now())],
    )


def _release(periodic: PeriodicTask, token: str, status: TaskStatus, error: str | None, duration_ms: float) -> None:
    """Record the outcome and end the lease, unless the lease ran out and another run took it."""
    actions: list[Any] = [
        TaskControl.last_status.set(status),
        TaskControl.last_finished_at.set(_now()),
        TaskControl.last_duration_ms.set(round(duration_ms)),
        TaskControl.lease_until.remove(),
        TaskControl.lease_token.remove(),
        TaskControl.last_error.set(error[-4000:]) if error else TaskControl.last_error.remove(),
    ]
    try:
        TaskControl(periodic.key).update(actions=actions, condition=TaskControl.lease_token == token)
    except UpdateError as exc:
        if not condition_failed(exc):
            raise
        logger.warning("a periodic run outlived its lease", extra={"periodic": periodic.name})


def run(periodic: PeriodicTask, context: Any) -> Any:
    """One scheduled invocation: run under the lease, or skip and record it when a run holds it."""
    token = acquire(periodic, _lease_seconds(context))
    if token is None:
        _record_skip(periodic)
        logger.warning("periodic task still running; this run is skipped", extra={"periodic": periodic.name})
        emit("PeriodicSkipped", task=periodic.name)
        return {"skipped": "the previous run still holds the lease"}
    started = time.perf_counter()
    with deadline.invocation(context):
        try:
            result = periodic.func()
        except Exception:
            elapsed_ms = (time.perf_counter() - started) * 1000
            _release(periodic, token, TaskStatus.FAILURE, traceback.format_exc(), elapsed_ms)
            emit("PeriodicFailed", task=periodic.name)
            raise  # the invocation fails: Lambda's Errors metric and alarms see it
    _release(periodic, token, TaskStatus.SUCCESS, None, (time.perf_counter() - started) * 1000)
    return result
