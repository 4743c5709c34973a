"""The Workers panel's CloudWatch source (WORKER_METRICS=cloudwatch, the deployed stages' setting),
read over real HTTP from the embedded emulator's CloudWatch, with metrics published to it as Lambda
would; and what it answers when CloudWatch has no data or does not answer."""

from __future__ import annotations

import os
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
import requests
from dashboard_support import Signed, sign_in


@pytest.fixture
def admin(gateway_url: str, keys: dict[str, str]) -> Signed:
    return sign_in(gateway_url, keys["admin"])


def _function(settings: Any, name: str) -> str:
    return f"{settings.app_name}-{settings.stage}-{name}"


def _publish(aws: Any, settings: Any, function: str) -> None:
    """What Lambda publishes for 3 invocations (1 error, 120/200/900 ms) a minute ago."""
    at = datetime.now(UTC) - timedelta(minutes=1)
    dims = [{"Name": "FunctionName", "Value": function}]
    data = [
        {"MetricName": "Invocations", "Dimensions": dims, "Timestamp": at, "Value": 3, "Unit": "Count"},
        {"MetricName": "Errors", "Dimensions": dims, "Timestamp": at, "Value": 1, "Unit": "Count"},
        {"MetricName": "Throttles", "Dimensions": dims, "Timestamp": at, "Value": 0, "Unit": "Count"},
        {"MetricName": "ConcurrentExecutions", "Dimensions": dims, "Timestamp": at, "Value": 1, "Unit": "Count"},
        *(
            {"MetricName": "Duration", "Dimensions": dims, "Timestamp": at, "Value": ms, "Unit": "Milliseconds"}
            for ms in (120.0, 200.0, 900.0)
        ),
    ]
    aws("cloudwatch").put_metric_data(Namespace="AWS/Lambda", MetricData=data)


def test_workers_panel_reads_lambda_metrics_from_cloudwatch(
    cloudwatch_source: None, admin: Signed, aws: Any, settings: Any
) -> None:
    reconciler = _function(settings, "dead_letter_reconciler")
    _publish(aws, settings, reconciler)
    answer = admin.get("/dashboard/api/workers")
    assert answer.status_code == 200, answer.text
    data = answer.json()
    assert data["available"] is True and data["source"] == "cloudwatch", data
    found = data["functions"][reconciler]
    assert (found["invocations"], found["errors"], found["throttles"], found["in_use"]) == (3, 1, 0, 1), found
    assert found["max_concurrency"] == 1 and found["queue"] is None
    assert (found["p50_ms"], found["p95_ms"]) == (200.0, 830.0), found  # extended statistics, interpolated
    # Not published by Lambda: None, never a made-up zero.
    assert found["timeouts"] is None and found["warm_sandboxes"] is None
    assert "not exposed by AWS" in data["notes"]["warm_sandboxes"]
    relay = data["functions"][_function(settings, "outbox_relay")]
    assert relay["invocations"] is None and relay["p50_ms"] is None  # no datapoint: no data


def test_workers_panel_says_why_when_cloudwatch_does_not_answer(
    cloudwatch_source: None, admin: Signed, endpoint: str
) -> None:
    from devtools.emulator.faults import FaultClient

    # CloudWatch signs as "monitoring", the service name the emulator's fault rules match.
    faults = FaultClient(os.environ.get("AWS_ENDPOINT_URL_CLOUDWATCH") or endpoint)  # the emulator serving it
    faults.add(service="monitoring", action="GetMetricData", code="ServiceUnavailable", status=503, times=50)
    try:
        answer = admin.get("/dashboard/api/workers")
    finally:
        faults.clear()
    assert answer.status_code == 200, answer.text
    data = answer.json()
    assert data["available"] is False and "CloudWatch does not answer" in data["reason"], data


def test_workers_panel_without_a_session_is_refused(cloudwatch_source: None, gateway_url: str) -> None:
    assert requests.get(gateway_url + "/dashboard/api/workers", timeout=30).status_code == 401


def test_stats_outcome_chart_reads_the_apps_emf_metrics_from_cloudwatch(
    cloudwatch_source: None, admin: Signed, aws: Any, settings: Any
) -> None:
    at = (datetime.now(UTC) - timedelta(minutes=3)).replace(second=10, microsecond=0)
    dims = [
        {"Name": "service", "Value": settings.app_name},
        {"Name": "stage", "Value": settings.stage},
        {"Name": "task", "Value": "tests.dashboard_ok"},  # registered by dashboard_support
    ]
    data = [
        {"MetricName": name, "Dimensions": dims, "Timestamp": at, "Value": value, "Unit": "Count"}
        for name, value in (("TaskSucceeded", 5), ("TaskFailed", 2), ("TaskRetried", 1))
    ]
    aws("cloudwatch").put_metric_data(Namespace="Bookshelf", MetricData=data)
    answer = admin.get("/dashboard/api/stats?window=1h")
    assert answer.status_code == 200, answer.text
    points = {p["t"]: p for p in answer.json()["series"]}
    minute = at.strftime("%Y-%m-%dT%H:%M")
    assert points.get(minute) == {"t": minute, "succeeded": 5, "failed": 2, "retried": 1, "revoked": 0}, points


def _task_dims(settings: Any, name: str) -> list[dict[str, str]]:
    return [
        {"Name": "service", "Value": settings.app_name},
        {"Name": "stage", "Value": settings.stage},
        {"Name": "task", "Value": name},
    ]


def test_stats_table_reads_counts_and_runtime_percentiles_from_the_emf_metrics(
    cloudwatch_source: None, admin: Signed, aws: Any, settings: Any
) -> None:
    at = (datetime.now(UTC) - timedelta(minutes=5)).replace(second=20, microsecond=0)
    dims = _task_dims(settings, "tests.dashboard_flaky")  # registered by dashboard_support
    counts = [
        {"MetricName": name, "Dimensions": dims, "Timestamp": at, "Value": value, "Unit": "Count"}
        for name, value in (("TaskSucceeded", 4), ("TaskFailed", 1), ("TaskRetried", 2), ("TaskRevoked", 1))
    ]
    runtimes = [
        {"MetricName": "TaskDuration", "Dimensions": dims, "Timestamp": at, "Value": ms, "Unit": "Milliseconds"}
        for ms in (100.0, 200.0, 300.0, 400.0, 1000.0)
    ]
    aws("cloudwatch").put_metric_data(Namespace="Bookshelf", MetricData=counts + runtimes)
    for window in ("1h", "24h", "7d"):
        answer = admin.get(f"/dashboard/api/stats?window={window}")
        assert answer.status_code == 200, answer.text
        data = answer.json()
        assert data["source"] == "cloudwatch", data
        row = data["tasks"]["tests.dashboard_flaky"]
        assert (row["processed"], row["succeeded"], row["failed"], row["retried"], row["revoked"]) == (8, 4, 1, 2, 1)
        # Exact percentiles over the window (the DynamoDB histogram only bounds them within x1.41).
        assert (row["runtime_p50_ms"], row["runtime_p95_ms"], row["runtime_max_ms"]) == (300.0, 880.0, 1000.0), row
    assert "tests.dashboard_permanent" not in data["tasks"]  # no outcome in the window: no row


def test_stats_say_why_when_cloudwatch_does_not_answer(cloudwatch_source: None, admin: Signed, endpoint: str) -> None:
    from devtools.emulator.faults import FaultClient

    faults = FaultClient(os.environ.get("AWS_ENDPOINT_URL_CLOUDWATCH") or endpoint)  # the emulator serving it
    faults.add(service="monitoring", action="GetMetricData", code="ServiceUnavailable", status=503, times=50)
    try:
        answer = admin.get("/dashboard/api/stats?window=24h")
    finally:
        faults.clear()
    assert answer.status_code == 200, answer.text  # a chart is not worth a 5xx
    data = answer.json()
    assert data["tasks"] == {} and data["series"] == [] and "CloudWatch does not answer" in data["reason"], data


def test_queue_depth_chart_reads_aws_sqs_metrics_from_cloudwatch(
    cloudwatch_source: None, admin: Signed, aws: Any, settings: Any
) -> None:
    at = (datetime.now(UTC) - timedelta(minutes=2)).replace(second=30, microsecond=0)

    def datum(queue: str, metric: str, value: float) -> dict[str, Any]:
        dims = [{"Name": "QueueName", "Value": queue}]
        return {"MetricName": metric, "Dimensions": dims, "Timestamp": at, "Value": value}

    data = [
        datum(settings.default.name, "ApproximateNumberOfMessagesVisible", 4),
        datum(settings.default.name, "ApproximateNumberOfMessagesVisible", 9),  # Maximum of the minute
        datum(settings.default.name, "ApproximateNumberOfMessagesNotVisible", 2),
        datum(settings.default.name, "ApproximateNumberOfMessagesDelayed", 1),
        datum(settings.default.name, "ApproximateAgeOfOldestMessage", 40),
        datum(settings.default.dlq_name, "ApproximateNumberOfMessagesVisible", 3),
        datum(settings.default.dlq_name, "ApproximateAgeOfOldestMessage", 600),
    ]
    aws("cloudwatch").put_metric_data(Namespace="AWS/SQS", MetricData=data)
    answer = admin.get("/dashboard/api/queues")
    assert answer.status_code == 200, answer.text
    found = answer.json()
    assert found["depth_source"] == "cloudwatch", found
    points = {p["t"]: p for p in found["depth_series"]}
    point = points.get(at.strftime("%Y-%m-%dT%H:%M:00Z"))
    assert point is not None, points
    assert point["depths"]["default"] == 12 and point["dead_letters"]["default"] == 3, point
    assert point["oldest_age_seconds"] == {"default": 40, "default:dlq": 600}, point
    assert "media" not in point["depths"]  # no datapoint for that queue: absent, not a made-up zero
