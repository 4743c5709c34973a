"""The one place a task's final failure goes: its `on_failure` hook (Celery's), called once.

The executor calls it for a permanent error or exhausted retries, the worker for an expired
task, the dead-letter reconciler for what the redrive policy moved (timeouts, crashes), each
only when its own write made the record FAILURE, so a hook runs once per failure. A revoke
goes through here too.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from chalicelib.platform.observability import emit, logger
from chalicelib.tasks.registry import FailureInfo, Task


def task_failed(
    task: Task,
    task_id: str,
    args: Sequence[Any],
    kwargs: dict[str, Any],
    exc: BaseException,
    info: FailureInfo,
) -> None:
    """Run the task's `on_failure` hook; its own exception is logged (the record is FAILURE already)."""
    if task.on_failure is None:
        return
    try:
        task.on_failure(exc, task_id, list(args), dict(kwargs), info)
    except Exception as hook_error:  # noqa: BLE001 - a hook must not turn a recorded failure into a crash
        logger.exception(
            "on_failure hook failed",
            extra={"task_id": task_id, "task": task.name, "error": f"{type(hook_error).__name__}: {hook_error}"},
        )
        emit("FailureHookFailed", task=task.name)
