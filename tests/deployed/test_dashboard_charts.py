"""The dashboard's charts read CloudWatch on the deployed stack: the Queues view's depth chart
from AWS/SQS (published each minute by devtools/ministack_patches.py's patch_sqs_metrics, as SQS
does) and the Stats view's table and chart from the workers' EMF task metrics."""

from __future__ import annotations

import base64
from typing import Any

import requests
from support import Api, Target, eventually, image, unique


def _signed_in(api: Api) -> dict[str, str]:
    """The dashboard session's Cookie header (sent by hand: the cookie is Secure, the URL http)."""
    answer = requests.post(api.url + "/dashboard/login", json={"key": api.keys["ops"]}, timeout=60)
    assert answer.status_code == 200, answer.text
    return {"Cookie": answer.headers["Set-Cookie"].split(";")[0]}


def test_queue_depth_chart_and_task_stats_answer_from_cloudwatch(api: Api, aws: Any, target: Target) -> None:
    sqs = aws("sqs")
    dlq = sqs.get_queue_url(QueueName=target.name("default-dlq"))["QueueUrl"]
    tag = unique("depth")
    for _ in range(3):  # nothing consumes a DLQ: the three stay visible until the sweep sees them
        sqs.send_message(QueueUrl=dlq, MessageBody=f'{{"probe": "{tag}"}}')
    cover = base64.b64encode(image("JPEG", color=(60, 90, 200))).decode()
    status, created = api.post("/books", {"title": "Charted", "authors": [unique("Stats")], "cover": cover})
    assert status == 202, created
    api.ready(str(created["book"]["id"]), timeout=180)  # a task ran: the workers emitted its metrics
    cookie = _signed_in(api)

    def charted() -> dict[str, Any] | None:
        answer = requests.get(api.url + "/dashboard/api/queues", headers=cookie, timeout=60)
        assert answer.status_code == 200, answer.text
        data = answer.json()
        assert data["depth_source"] == "cloudwatch", data
        seen = [p for p in data["depth_series"] if (p["dead_letters"].get("default") or 0) >= 3]
        return data if seen else None

    try:
        # SQS's minute, then the dashboard's one-minute cache: up to about two minutes.
        data = eventually(charted, timeout=200, interval=10, what="the DLQ depth in AWS/SQS")
    finally:
        sqs.purge_queue(QueueUrl=dlq)
    latest = data["depth_series"][-1]
    assert set(latest["depths"]) >= {"default", "media"}, latest
    assert latest["t"].endswith(":00Z") and "default:dlq" in latest["oldest_age_seconds"], latest

    # The Stats view: the workers' EMF metrics of the cover task that ran above.
    def stats() -> dict[str, Any] | None:
        answer = requests.get(api.url + "/dashboard/api/stats?window=1h", headers=cookie, timeout=60)
        assert answer.status_code == 200, answer.text
        found = answer.json()
        assert found["source"] == "cloudwatch", found
        return found if any(row["succeeded"] for row in found["tasks"].values()) else None

    found = eventually(stats, timeout=120, interval=10, what="per-task stats in CloudWatch")
    name, row = next((n, r) for n, r in found["tasks"].items() if r["succeeded"])
    assert row["processed"] == sum(row[o] for o in ("succeeded", "failed", "retried", "revoked")), (name, row)
    assert found["series"] and sum(p["succeeded"] + p["failed"] for p in found["series"]) >= 1, found
    assert row["runtime_max_ms"] is not None, row  # TaskDuration, one per attempt that ran
    assert row["runtime_p50_ms"] <= row["runtime_p95_ms"] <= row["runtime_max_ms"], row
