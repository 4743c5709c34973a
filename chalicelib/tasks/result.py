"""Waiting for a task's result: Celery's `AsyncResult.get(timeout=...)` over the task records.

There is no result channel to block on (Celery's Redis/RPC backends push; DynamoDB does not),
so waiting is bounded polling of the record with backoff: a strongly consistent `GetItem`
(1 RCU per 4 KB of record) at 0.1 s, then 1.5 times longer each time, at most 2 s apart
(`poll_delays`). Twenty seconds of waiting cost 17 reads; a task that finishes at once, one.
"""

from __future__ import annotations

import builtins
import re
import time
from collections.abc import Callable, Iterator
from typing import Any

from chalicelib.platform import deadline
from chalicelib.tasks.models import TaskRecord
from chalicelib.tasks.states import FINAL_STATUSES, TaskStatus

FIRST_POLL_SECONDS = 0.1
POLL_FACTOR = 1.5
MAX_POLL_SECONDS = 2.0
_ERROR_TYPE = re.compile(r"(?:^|: )([A-Za-z_][A-Za-z0-9_]*): ")


def poll_delays(timeout: float) -> Iterator[float]:
    """The pauses between reads while waiting `timeout` seconds: growing, capped, summing to `timeout`."""
    waited, delay = 0.0, FIRST_POLL_SECONDS
    while waited < timeout:
        step = min(delay, timeout - waited)
        yield step
        waited += step
        delay = min(delay * POLL_FACTOR, MAX_POLL_SECONDS)


def read_record(task_id: str) -> TaskRecord | None:
    """The record now (strongly consistent), or None."""
    try:
        return TaskRecord.get(task_id, consistent_read=True)
    except TaskRecord.DoesNotExist:
        return None


def wait_for(
    task_id: str,
    timeout: float,
    read: Callable[[str], TaskRecord | None] = read_record,
    sleep: Callable[[float], None] = time.sleep,
    first: TaskRecord | None = None,
) -> TaskRecord | None:
    """The record as soon as it is final, or as it is after `timeout` seconds (None: no record).

    `first` is a record the caller has just read (it saves a read).
    """
    record = first if first is not None else read(task_id)
    for pause in poll_delays(timeout):
        if record is not None and record.status in FINAL_STATUSES:
            break
        sleep(pause)
        record = read(task_id)
    return record


class TaskError(Exception):
    """A task that failed, raised by `AsyncResult.get` (Celery re-raises the task's exception).

    The record keeps the error as text ("ValueError: bad isbn"), so `get` raises a class made of
    this one and, when the text names a builtin exception, that builtin too: `except ValueError`
    and `except TaskError` both catch it. `reason` is the record's whole error text.
    """

    def __init__(self, task_id: str, reason: str) -> None:
        super().__init__(reason)
        self.task_id = task_id
        self.reason = reason


class TaskTimeoutError(TimeoutError):
    """The task was not final within the `get` timeout (Celery's `celery.exceptions.TimeoutError`)."""


def error_for(task_id: str, reason: str) -> TaskError:
    """The exception `get` raises for a FAILURE record with this error text."""
    names = _ERROR_TYPE.findall(reason)
    builtin = getattr(builtins, names[-1], None) if names else None
    if isinstance(builtin, type) and issubclass(builtin, Exception) and not issubclass(builtin, TaskError):
        try:
            cls = type(builtin.__name__, (TaskError, builtin), {"__module__": "chalicelib.tasks.result"})
        except TypeError:  # a builtin whose layout cannot be mixed in (rare): the plain TaskError
            return TaskError(task_id, reason)
        error: TaskError = cls(task_id, reason)
        return error
    return TaskError(task_id, reason)


class AsyncResult(str):
    """A task id that can wait for its task's result (Celery's `AsyncResult`).

    A `str` subclass, so `delay()` and `apply_async()` still return the id that callers and
    JSON bodies use, and the result API comes with it: `some_task.delay(1).get(timeout=10)`.
    """

    @property
    def id(self) -> str:
        return str(self)

    @property
    def task_id(self) -> str:
        return str(self)

    @property
    def state(self) -> str:
        """The record's status now (PENDING when there is no record yet, as in Celery)."""
        record = read_record(self.id)
        return TaskStatus.PENDING if record is None else str(record.status)

    status = state

    def ready(self) -> bool:
        """True when the task is final (SUCCESS, FAILURE or REVOKED)."""
        return self.state in FINAL_STATUSES

    def successful(self) -> bool:
        return self.state == TaskStatus.SUCCESS

    def failed(self) -> bool:
        return self.state == TaskStatus.FAILURE

    def get(self, timeout: float | None = 10.0, propagate: bool = True) -> Any:
        """The task's return value once it is final, waiting at most `timeout` seconds.

        Raises TaskTimeoutError (a TimeoutError) when it is not final by then, and the task's
        error (TaskError) when it failed and `propagate` is True; with `propagate=False` a
        failed task's error text is returned instead. `timeout=None` waits as long as it takes.
        Refused inside a worker invocation, as Celery refuses it inside a task: a task that
        waits for another holds a Lambda and a worker slot (use a countdown or a chord).
        """
        if deadline.active():
            raise RuntimeError("never call result.get() within a task: it holds the worker while it waits")
        limit = float("inf") if timeout is None else max(0.0, float(timeout))
        record = wait_for(self.id, limit)
        if record is None or record.status not in FINAL_STATUSES:
            raise TaskTimeoutError(f"task {self.id} is not final after {timeout} s")
        if record.status == TaskStatus.SUCCESS:
            return record.result
        reason = str(record.error or record.status)
        if propagate:
            raise error_for(self.id, reason)
        return reason
