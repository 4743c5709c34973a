"""One attempt of one task: claim the record, run, and decide what happens next."""

from __future__ import annotations

import json
import time
import traceback
from dataclasses import dataclass
from typing import Any

from aws_lambda_powertools.metrics import MetricUnit

from chalicelib.platform.config import get_settings
from chalicelib.platform.observability import emit, logger
from chalicelib.tasks import current, history, records
from chalicelib.tasks.backoff import MIN_DELAY_SECONDS
from chalicelib.tasks.envelope import Envelope
from chalicelib.tasks.errors import PERMANENT_REASON, is_permanent
from chalicelib.tasks.failures import task_failed
from chalicelib.tasks.hooks import Final, run_final_hooks
from chalicelib.tasks.registry import FailureInfo, Task
from chalicelib.tasks.states import AttemptOutcome, ClaimOutcome


@dataclass(frozen=True)
class Outcome:
    """What became of an attempt (`kind`), with the delay of a retry and the reason of a failure."""

    kind: AttemptOutcome
    delay: int = 0
    reason: str = ""
    result: Any = None
    trace: str | None = None  # the attempt's traceback, for its history


def _log_keys(task: Task, env: Envelope) -> dict[str, Any]:
    keys: dict[str, Any] = {"task_id": env.task_id, "task": env.task}
    book_id = task.book_id(env.args, env.kwargs)
    if book_id:
        keys["book_id"] = book_id
    return keys


def run_attempt(task: Task, env: Envelope, attempt: int, max_attempts: int, lease_seconds: int) -> Outcome:
    """Run `env` once as attempt number `attempt` (1-based) of at most `max_attempts`."""
    claim = records.claim(env, task.queue, lease_seconds)
    if claim.outcome is ClaimOutcome.DONE:
        logger.info("duplicate delivery of a task that already succeeded; skipped", extra=_log_keys(task, env))
        # Its callbacks are told again (they are idempotent): the first run may have died before.
        stored = records.stored_result(env.task_id) if env.links else None
        final = Final(records.SUCCESS, result=stored) if env.links else None
        return _tell(env, Outcome(AttemptOutcome.DUPLICATE), final)
    if claim.outcome is ClaimOutcome.REVOKED:
        return _revoked(task, env)
    if claim.outcome is ClaimOutcome.ABSENT:
        logger.info("the task's record is not committed yet; will look again", extra=_log_keys(task, env))
        return Outcome(AttemptOutcome.ABSENT)
    if claim.outcome is ClaimOutcome.BUSY:
        logger.info("task is running elsewhere; will look again", extra=_log_keys(task, env))
        return Outcome(AttemptOutcome.BUSY, delay=claim.retry_after)
    assert claim.token is not None
    logger.thread_safe_append_keys(**_log_keys(task, env), attempt=attempt)
    started = time.perf_counter()
    try:
        outcome = _run_claimed(task, env, claim.token, attempt, max_attempts, started)
    finally:
        logger.thread_safe_remove_keys(["task_id", "task", "book_id", "attempt"])
    kept = _KEPT.get(outcome.kind)
    if kept is not None:  # an attempt that ran: its history and statistics (tasks/history.py)
        elapsed = (time.perf_counter() - started) * 1000
        error = outcome.reason if outcome.kind != "success" else None
        history.record_attempt(env.task_id, task.name, claim.attempts or attempt, kept, elapsed, error, outcome.trace)
    return outcome


_KEPT = {"success": "succeeded", "retry": "retried", "failure": "failed", "revoked": "revoked"}


def _tell(env: Envelope, outcome: Outcome, final: Final | None) -> Outcome:
    """Run the final-state hooks; if one fails, keep the message so that they run again."""
    if final is None:
        return outcome
    try:
        run_final_hooks(env, final)
    except Exception as exc:  # noqa: BLE001 - the message comes back and the hooks run again
        logger.warning("a final-state hook failed; the message comes back", extra={"error": str(exc)})
        return Outcome(AttemptOutcome.BUSY, delay=MIN_DELAY_SECONDS, reason=str(exc))
    return outcome


def _revoked(task: Task, env: Envelope) -> Outcome:
    logger.info("task was revoked; its message is dropped", extra=_log_keys(task, env))
    emit("TaskRevoked", task=task.name)
    return _tell(env, Outcome(AttemptOutcome.REVOKED, reason="revoked"), Final(records.REVOKED, error="revoked"))


def _run_claimed(task: Task, env: Envelope, token: str, attempt: int, max_attempts: int, started: float) -> Outcome:
    try:
        with current.running(env.task_id):
            result = task.func(*env.args, **env.kwargs)
        json.dumps(result)
    except Exception as exc:  # noqa: BLE001 - every task error is recorded, none escapes
        return _failed(task, env, token, exc, attempt, max_attempts)
    finally:
        emit("TaskDuration", (time.perf_counter() - started) * 1000, MetricUnit.Milliseconds, task=task.name)
    if not records.mark_success(env.task_id, token, result):
        if records.status_of(env.task_id) == records.REVOKED:  # revoked while it ran: its result is not kept
            return _revoked(task, env)
        return Outcome(AttemptOutcome.SUCCESS, result=result)  # the lease went to another run, which tells the hooks
    emit("TaskSucceeded", task=task.name)
    logger.info("task succeeded")
    return _tell(env, Outcome(AttemptOutcome.SUCCESS, result=result), Final(records.SUCCESS, result=result))


def _failed(task: Task, env: Envelope, token: str, exc: Exception, attempt: int, max_attempts: int) -> Outcome:
    settings = get_settings()
    error = f"{type(exc).__name__}: {exc}"
    trace = traceback.format_exc()
    if is_permanent(exc, task.dont_autoretry_for):
        reason = f"{PERMANENT_REASON}: {error}"
    elif not task.retries(exc):
        reason = f"not retried (not in autoretry_for): {error}"
    elif attempt >= max_attempts:
        reason = f"retries exhausted after {attempt} attempts: {error}"
    else:
        delay = task.retry_delay(attempt, settings.retry_backoff_base, settings.retry_backoff_cap)
        if not records.mark_retry(env.task_id, token, error, trace, task.queue, delay) and _was_revoked(env):
            return _revoked(task, env)
        emit("TaskRetried", task=task.name)
        logger.warning("task failed; will retry", extra={"error": error, "retry_in_seconds": delay})
        return Outcome(AttemptOutcome.RETRY, delay=delay, reason=error, trace=trace)
    final: Final | None = None
    if records.mark_failure(env.task_id, token, reason, trace):  # False: the lease was lost, not ours to end
        task_failed(task, env.task_id, env.args, env.kwargs, exc, FailureInfo(reason, trace))
        final = Final(records.FAILURE, error=reason)
    elif _was_revoked(env):
        return _revoked(task, env)
    emit("TaskFailed", task=task.name)
    logger.error("task failed for good", extra={"error": reason})
    return _tell(env, Outcome(AttemptOutcome.FAILURE, reason=reason, trace=trace), final)


def _was_revoked(env: Envelope) -> bool:
    return records.status_of(env.task_id) == records.REVOKED
