"""The Queues view's depth chart from CloudWatch when deployed (`WORKER_METRICS=cloudwatch`).

SQS publishes AWS/SQS metrics per queue every minute (dimension QueueName), free of charge;
reading them costs one GetMetricData call, so no dashboard look writes a DynamoDB item as the
local minute buckets do. Per work queue and its DLQ: ApproximateNumberOfMessagesVisible,
ApproximateNumberOfMessagesNotVisible, ApproximateNumberOfMessagesDelayed and
ApproximateAgeOfOldestMessage, Maximum per minute over DEPTH_MINUTES: 8 queries per queue, in
ONE call, kept CACHE_SECONDS per process (the Queues view polls every few seconds; a new point
comes once a minute). A minute SQS did not report is absent from the series, never a zero.
"""

from __future__ import annotations

import threading
import time
from collections import defaultdict
from datetime import UTC, datetime, timedelta
from typing import Any

from botocore.exceptions import BotoCoreError, ClientError

from chalicelib.platform.aws import client
from chalicelib.platform.config import get_settings
from chalicelib.platform.observability import logger

DEPTH_MINUTES = 60
CACHE_SECONDS = 60.0
# query id part -> AWS/SQS metric
METRICS = {
    "vis": "ApproximateNumberOfMessagesVisible",
    "inv": "ApproximateNumberOfMessagesNotVisible",
    "del": "ApproximateNumberOfMessagesDelayed",
    "age": "ApproximateAgeOfOldestMessage",
}
_cache: dict[str, Any] = {}
_lock = threading.Lock()


def queries() -> list[dict[str, Any]]:
    """Ids `<metric>_<w|d>_<index>`: w the work queue, d its DLQ, index its place in the settings."""
    found = []
    for index, queue in enumerate(get_settings().queues.values()):
        for role, name in (("w", queue.name), ("d", queue.dlq_name)):
            for part, metric in METRICS.items():
                stat = {
                    "Metric": {
                        "Namespace": "AWS/SQS",
                        "MetricName": metric,
                        "Dimensions": [{"Name": "QueueName", "Value": name}],
                    },
                    "Period": 60,
                    "Stat": "Maximum",
                }
                found.append({"Id": f"{part}_{role}_{index}", "MetricStat": stat})
    return found


def depth_series() -> list[dict[str, Any]]:
    """Points `{"t", "depths", "dead_letters", "oldest_age_seconds"}` per minute, oldest first, keyed
    by queue key as stats.depth_series's are (depth = visible + not visible + delayed). Empty when
    CloudWatch does not answer (logged): a chart point is not worth failing the overview."""
    with _lock:
        if _cache and time.monotonic() - _cache["at"] < CACHE_SECONDS:
            return list(_cache["series"])
    try:
        series = _read()
    except (ClientError, BotoCoreError) as exc:
        logger.warning("CloudWatch queue metrics unavailable", extra={"error": str(exc)})
        return []
    with _lock:
        _cache.update(at=time.monotonic(), series=series)
    return list(series)


def _read() -> list[dict[str, Any]]:
    keys = list(get_settings().queues)
    end = datetime.now(UTC).replace(second=0, microsecond=0) + timedelta(minutes=1)
    answer = client("cloudwatch").get_metric_data(
        MetricDataQueries=queries(), StartTime=end - timedelta(minutes=DEPTH_MINUTES), EndTime=end
    )
    # moment -> field -> queue key -> value
    at: dict[str, dict[str, dict[str, float]]] = defaultdict(lambda: defaultdict(lambda: defaultdict(float)))
    for result in answer.get("MetricDataResults", []):
        part, role, index = str(result.get("Id")).split("_")
        field = "oldest_age_seconds" if part == "age" else "depths" if role == "w" else "dead_letters"
        key = keys[int(index)] + (":dlq" if part == "age" and role == "d" else "")
        for moment, value in zip(result.get("Timestamps", []), result.get("Values", []), strict=False):
            at[_minute(moment)][field][key] += float(value)
    return [
        {
            "t": t,
            **{
                field: {k: int(v) for k, v in at[t][field].items()}
                for field in ("depths", "dead_letters", "oldest_age_seconds")
            },
        }
        for t in sorted(at)
    ]


def _minute(value: Any) -> str:
    moment = value if isinstance(value, datetime) else datetime.fromisoformat(str(value).replace("Z", "+00:00"))
    return moment.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:00Z")
