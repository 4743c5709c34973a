"""Limits and schedules on the deployed stack: the media mapping's maximum concurrency, observed
from the resize tasks' own start and finish times; the relay and reconciler schedules run."""

from __future__ import annotations

import base64
import io
from concurrent.futures import ThreadPoolExecutor
from datetime import datetime
from typing import Any

from PIL import Image
from support import Api, Target, eventually, unique


def _gradient_png(width: int, height: int, shade: int) -> bytes:
    out = io.BytesIO()
    Image.linear_gradient("L").resize((width, height)).point(lambda v: (v + shade * 40) % 256).save(out, "PNG")
    return out.getvalue()


def _overlap(intervals: list[tuple[datetime, datetime]]) -> int:
    """The most intervals open at one instant."""
    events = sorted([(s, 1) for s, _ in intervals] + [(e, -1) for _, e in intervals], key=lambda x: (x[0], x[1]))
    most = now = 0
    for _, step in events:
        now += step
        most = max(most, now)
    return most


def test_media_mapping_never_runs_more_than_its_maximum_concurrency(
    api: Api, aws: Any, target: Target, timings: dict[str, float]
) -> None:
    mapping = aws("lambda").list_event_source_mappings(FunctionName=target.name("media_worker"))["EventSourceMappings"]
    limit = mapping[0]["ScalingConfig"]["MaximumConcurrency"]
    assert limit == 2

    def create(i: int) -> dict[str, Any]:
        # 25-megapixel PNGs (about 100 KB each): long enough resizes for two to overlap when two may run.
        cover = base64.b64encode(_gradient_png(5000, 5000, i)).decode()
        status, created = api.post("/books", {"title": f"Burst {i}", "authors": [unique("Burst")], "cover": cover})
        assert status == 202, created
        return dict(created)

    with ThreadPoolExecutor(6) as pool:
        created = list(pool.map(create, range(6)))
    for c in created:
        api.ready(c["book"]["id"], timeout=300)
    records = [api.task(t) for c in created for t in c["tasks"]]
    resizes = [r for r in records if r.get("name") == "covers.resize" and r.get("started_at") and r.get("finished_at")]
    assert len(resizes) == len(created), records
    intervals = [(datetime.fromisoformat(r["started_at"]), datetime.fromisoformat(r["finished_at"])) for r in resizes]
    observed = _overlap(intervals)
    timings["media_resizes_at_once_observed"] = observed
    assert 1 <= observed <= limit


def test_relay_and_reconciler_schedules_run(aws: Any, target: Target) -> None:
    logs = aws("logs")

    def ran(function: str) -> bool:
        group = f"/aws/lambda/{target.name(function)}"
        try:
            return bool(logs.filter_log_events(logGroupName=group, limit=5).get("events"))
        except logs.exceptions.ResourceNotFoundException:
            return False

    for function in ("outbox_relay", "dead_letter_reconciler"):
        eventually(lambda f=function: ran(f), timeout=150, interval=5, what=f"a scheduled run of {function}")
