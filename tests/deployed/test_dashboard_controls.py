"""The dashboard's controls act on the real event source mapping of the deployed stack, and its
Workers panel answers from CloudWatch (the deployed stages set WORKER_METRICS=cloudwatch)."""

from __future__ import annotations

import base64
import time
from collections.abc import Iterator
from typing import Any

import pytest
import requests
from support import Api, Target, eventually, image, unique

HOLD_SECONDS = 20  # how long a paused queue's cover must stay unprocessed


def _media_mapping(aws: Any, target: Target) -> dict[str, Any]:
    """The media queue's one event source mapping, read from Lambda (an operator's view)."""
    sqs = aws("sqs")
    url = sqs.get_queue_url(QueueName=target.name("media"))["QueueUrl"]
    arn = sqs.get_queue_attributes(QueueUrl=url, AttributeNames=["QueueArn"])["Attributes"]["QueueArn"]
    mappings = aws("lambda").list_event_source_mappings(EventSourceArn=arn)["EventSourceMappings"]
    assert len(mappings) == 1, mappings
    return dict(aws("lambda").get_event_source_mapping(UUID=mappings[0]["UUID"]))


def _post_cover(api: Api, color: tuple[int, int, int]) -> str:
    cover = base64.b64encode(image("JPEG", color=color)).decode()
    status, created = api.post("/books", {"title": "Held", "authors": [unique("Paused")], "cover": cover})
    assert status == 202, created
    return str(created["book"]["id"])


@pytest.fixture
def media_resumed(api: Api) -> Iterator[None]:
    """Whatever a test does, the media queue ends resumed at its configured maximum."""
    status, before = api.get("/queues", user="ops")
    assert status == 200, before
    configured = next(q for q in before["queues"] if q["queue"] == "media")["configured_max_concurrency"]
    yield
    api.post("/queues/media/resume", user="ops")
    api.put("/queues/media/concurrency", {"max_concurrency": configured}, user="ops")


def test_pause_disables_the_mapping_and_holds_covers_resume_finishes_them(
    api: Api, aws: Any, target: Target, media_resumed: None
) -> None:
    status, paused = api.post("/queues/media/pause", user="ops")
    assert status == 200, paused
    assert paused["paused"] is True and paused["mappings"] == 1, paused
    mapping = _media_mapping(aws, target)
    assert mapping["State"] == "Disabled" and mapping.get("Enabled", False) is False, mapping

    book_id = _post_cover(api, (90, 20, 160))
    deadline = time.monotonic() + HOLD_SECONDS
    while time.monotonic() < deadline:
        book = api.book(book_id)
        assert book["cover_status"] not in ("ready", "failed"), f"processed while paused: {book}"
        time.sleep(1)
    status, queues = api.get("/queues", user="ops")
    media = next(q for q in queues["queues"] if q["queue"] == "media")
    assert media["paused"] is True and media["visible"] + media["in_flight"] >= 1, media

    status, resumed = api.post("/queues/media/resume", user="ops")
    assert status == 200 and resumed["paused"] is False, resumed
    assert _media_mapping(aws, target)["State"] == "Enabled"
    assert api.ready(book_id, timeout=180)["cover_status"] == "ready"


def test_max_concurrency_sets_the_mappings_scaling_config_and_queues_reports_it(
    api: Api, aws: Any, target: Target, media_resumed: None
) -> None:
    status, changed = api.put("/queues/media/concurrency", {"max_concurrency": 3}, user="ops")
    assert status == 200, changed
    assert changed["max_concurrency"] == 3 and changed["mappings"] == 1, changed
    assert _media_mapping(aws, target)["ScalingConfig"]["MaximumConcurrency"] == 3
    status, queues = api.get("/queues", user="ops")
    assert status == 200, queues
    assert next(q for q in queues["queues"] if q["queue"] == "media")["max_concurrency"] == 3

    for wrong in (1, 1001, "3", True, None):
        status, answer = api.put("/queues/media/concurrency", {"max_concurrency": wrong}, user="ops")
        assert status == 422, (wrong, answer)
        assert set(answer) == {"error", "message", "fields"} and answer["fields"][0]["field"] == "max_concurrency"
    assert _media_mapping(aws, target)["ScalingConfig"]["MaximumConcurrency"] == 3  # refused values changed nothing
    status, answer = api.put("/queues/media/concurrency", {"max_concurrency": 3}, user="owner")
    assert status == 403, answer  # not an admin key


def _signed_in(api: Api) -> dict[str, str]:
    """The dashboard session's Cookie header (sent by hand: the cookie is Secure, the URL http)."""
    answer = requests.post(api.url + "/dashboard/login", json={"key": api.keys["ops"]}, timeout=60)
    assert answer.status_code == 200, answer.text
    return {"Cookie": answer.headers["Set-Cookie"].split(";")[0]}


def test_workers_panel_answers_from_cloudwatch_and_the_mapping(api: Api, target: Target) -> None:
    book_id = _post_cover(api, (20, 160, 90))
    api.ready(book_id, timeout=180)  # at least one media worker invocation
    cookie, worker = _signed_in(api), target.name("media_worker")

    def invoked() -> dict[str, Any] | None:
        answer = requests.get(api.url + "/dashboard/api/workers", headers=cookie, timeout=60)
        assert answer.status_code == 200, answer.text
        data = answer.json()
        assert data["available"] is True and data["source"] == "cloudwatch", data
        found = data["functions"].get(worker)
        return data if found and (found["invocations"] or 0) >= 1 else None

    data = eventually(invoked, timeout=90, interval=5, what=f"{worker}'s invocations in CloudWatch")
    media = data["functions"][worker]
    assert media["queue"] == target.name("media") and media["paused"] is False, media
    assert media["max_concurrency"] is not None and media["batch_size"] == 1, media
    assert media["errors"] is not None and media["p50_ms"] is not None and media["p95_ms"] >= media["p50_ms"], media
    assert media["cold_starts"] is not None and media["cold_starts"] >= 1, media  # the app's EMF ColdStart
    assert media["warm_sandboxes"] is None and media["timeouts"] is None  # Lambda publishes neither
    assert "not exposed by AWS" in data["notes"]["warm_sandboxes"]
    assert target.name("dead_letter_reconciler") in data["functions"], sorted(data["functions"])
