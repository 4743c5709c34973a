"""The functions chalice makes, as the infrastructure sees them: names, workers, limits, schedules.

chalice creates the functions, their roles (policies in `.chalice/policy-*.json`), the REST API,
the SQS event sources and the periodic tasks' schedules itself; the template and the deploy
tool only name them, check their limits against the tasks, and set what chalice cannot.
"""

from __future__ import annotations

import json
import os
from typing import Any

from chalice.constants import DEFAULT_LAMBDA_TIMEOUT

from chalicelib.platform.config import Settings
from devtools.stage import ROOT, default_drift, stage_environment
from infra.model import logical_id

# Logical ids chalice gives the functions (see `chalice package` output).
FUNCTIONS = {
    "api_handler": "APIHandler",
    "api_key_auth": "ApiKeyAuth",
    "media_worker": "MediaWorker",
    "default_worker": "DefaultWorker",
    "dead_letter_reconciler": "DeadLetterReconciler",
    "outbox_relay": "OutboxRelay",
}
WORKERS = {"media": "media_worker", "default": "default_worker"}


def function_name(settings: Any, name: str) -> str:
    """A function's name as `chalice deploy` gives it (`{app}-{stage}[-{function}]`)."""
    base = f"{settings.app_name}-{settings.stage}"
    return base if name == "api_handler" else f"{base}-{name}"


def response_types(settings: Any) -> list[str]:
    """The event source mappings' FunctionResponseTypes that match the workers' setting."""
    return ["ReportBatchItemFailures"] if settings.report_batch_item_failures else []


def function_settings(stage: str) -> dict[str, dict[str, Any]]:
    """Per-function settings of the stage (timeout, memory, policy file)."""
    config = json.loads((ROOT / ".chalice" / "config.json").read_text())
    functions: dict[str, dict[str, Any]] = config["stages"][stage].get("lambda_functions", {})
    return functions


def function_timeout(functions: dict[str, dict[str, Any]], name: str) -> int:
    return int(functions.get(name, {}).get("lambda_timeout", DEFAULT_LAMBDA_TIMEOUT))


def check_time_limits(functions: dict[str, dict[str, Any]]) -> None:
    """Refuse a task whose `time_limit` exceeds the timeout of the function that runs it.

    Imports the app, so every task module it loads is registered.
    """
    import app  # noqa: F401 - registers every task
    from chalicelib.tasks.registry import registered_tasks

    for task in registered_tasks().values():
        if task.time_limit is None:
            continue
        worker = WORKERS[task.queue]
        timeout = function_timeout(functions, worker)
        if task.time_limit > timeout:
            raise SystemExit(
                f"task {task.name}: time_limit {task.time_limit}s exceeds the {timeout}s timeout of {worker}, "
                "which would kill the whole batch; lower time_limit or raise lambda_timeout"
            )


def check_visibility_timeouts(settings: Settings, functions: dict[str, dict[str, Any]]) -> None:
    """Refuse a work queue whose visibility timeout is below 6 x its worker's timeout (AWS's advice)."""
    for queue in settings.queues.values():
        timeout = int(functions.get(WORKERS[queue.key], {}).get("lambda_timeout", 60))
        if queue.visibility_timeout < 6 * timeout:
            raise SystemExit(
                f"{queue.name}: visibility timeout {queue.visibility_timeout}s is below 6 x the function timeout "
                f"({timeout}s), as AWS advises for SQS event sources"
            )


def periodic_functions() -> dict[str, str]:
    """Logical ids of the scheduled functions of the app's periodic tasks (`@periodic_task`).

    Imports the app, so every periodic task is registered.
    """
    import app  # noqa: F401 - registers every periodic task
    from chalicelib.tasks.periodic import registered_periodic

    return {name: logical_id(name) for name in registered_periodic()}


def use_stage(stage: str) -> None:
    """Export the stage's settings (variables already set win, e.g. RESOURCE_PREFIX).

    Refuses a `.chalice/config.json` that contradicts the settings' defaults, so what is
    packaged or deployed never differs from what the code and the tests assume.
    """
    drift = default_drift()
    if drift:
        raise SystemExit(".chalice/config.json disagrees with chalicelib/platform/config.py:\n  " + "\n  ".join(drift))
    for name, value in stage_environment(stage).items():
        os.environ.setdefault(name, value)
    os.environ.setdefault("AWS_DEFAULT_REGION", "us-east-1")
