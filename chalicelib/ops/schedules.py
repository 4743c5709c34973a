"""`GET /schedules`: every periodic task with its schedule and what its last runs did."""

from __future__ import annotations

import time
from typing import Any

from chalicelib.tasks.control import TaskControl
from chalicelib.tasks.periodic import PeriodicTask, registered_periodic


def _iso(value: Any) -> str | None:
    return value.isoformat() if value else None


def view(periodic: PeriodicTask, state: TaskControl | None) -> dict[str, Any]:
    """JSON form of one periodic task (never run yet: no state)."""
    lease = int(state.lease_until) if state is not None and state.lease_until is not None else None
    return {
        "name": periodic.name,
        "schedule": periodic.expression(),
        "cron": periodic.cron,
        "running": lease is not None and lease >= time.time(),
        "runs": int(state.runs or 0) if state else 0,
        "skipped": int(state.skipped or 0) if state else 0,
        "last_run_at": _iso(state.last_run_at) if state else None,
        "last_finished_at": _iso(state.last_finished_at) if state else None,
        "last_status": state.last_status if state else None,
        "last_error": state.last_error if state else None,
        "last_duration_ms": int(state.last_duration_ms) if state and state.last_duration_ms is not None else None,
        "last_skipped_at": _iso(state.last_skipped_at) if state else None,
    }


def overview() -> list[dict[str, Any]]:
    """Every periodic task, by name (one strongly consistent read each: there are a handful)."""
    rows = []
    for _, periodic in sorted(registered_periodic().items()):
        try:
            state: TaskControl | None = TaskControl.get(periodic.key, consistent_read=True)
        except TaskControl.DoesNotExist:
            state = None
        rows.append(view(periodic, state))
    return rows
