"""The Workers panel's CloudWatch queries stay within GetMetricData's limits, and a function
without datapoints reads as no data (the reads over the emulator are in
tests/functional/test_worker_metrics.py)."""

from __future__ import annotations

import pytest


@pytest.mark.unit
def test_one_function_without_datapoints_is_no_data_and_queries_stay_bounded() -> None:
    from chalicelib.ops import lambda_metrics

    function: lambda_metrics.Function = {
        "name": "f",
        "queue": "q",
        "batch_size": 1,
        "max_concurrency": 2,
        "paused": False,
        "worker": True,
    }
    shown = lambda_metrics._function(0, function, {"inv0": [], "p50": []})
    assert shown["invocations"] is None and shown["p50_ms"] is None and shown["cold_starts"] is None
    many = [function] * 200
    assert len(lambda_metrics.queries(many, 3600)) == lambda_metrics.MAX_QUERIES


@pytest.mark.unit
def test_stats_queries_stay_within_get_metric_data_limits(monkeypatch: pytest.MonkeyPatch) -> None:
    from chalicelib.dashboard import outcome_metrics, queue_metrics

    names = [f"task{i}" for i in range(500)]
    monkeypatch.setattr(outcome_metrics, "registered_tasks", lambda: dict.fromkeys(names))
    kept = outcome_metrics.task_names()
    week = outcome_metrics.queries(kept, 3600, 7 * 86400)
    assert len(week) <= outcome_metrics.MAX_QUERIES
    points = sum(7 * 24 + 1 if q["MetricStat"]["Period"] == 3600 else 1 for q in week)
    assert points <= 100_800
    assert len(queue_metrics.queries()) <= outcome_metrics.MAX_QUERIES
