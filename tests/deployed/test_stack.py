"""The one-stack path (docs/DEPLOY.md § 1: `make package`, then the template through S3), deployed by
devtools/backends/ministack.py beside the `make deploy` stage: its API, mappings and a cover end to end."""

from __future__ import annotations

import base64
from typing import Any

from support import Api, Target, image, unique


def test_stack_api_serves_books_with_its_authorizer(target: Target) -> None:
    api = Api(target.stack_api_url, target.stack_keys)
    status, created = api.post("/books", {"title": "Stacked", "authors": [unique("Stack")]})
    assert status == 202, created
    assert api.book(created["book"]["id"])["title"] == "Stacked"
    assert api.post("/books", {"title": "x", "authors": ["y"]}, user=None)[0] == 401


def test_stack_mappings_report_batch_item_failures_with_their_concurrency(aws: Any, target: Target) -> None:
    lam = aws("lambda")
    found = {}
    for worker, limit in (("media_worker", 2), ("default_worker", 10)):
        name = target.name(worker, target.stack_stage)
        (mapping,) = lam.list_event_source_mappings(FunctionName=name)["EventSourceMappings"]
        found[worker] = (
            mapping.get("FunctionResponseTypes"),
            mapping.get("ScalingConfig", {}).get("MaximumConcurrency"),
        )
        assert found[worker] == (["ReportBatchItemFailures"], limit), found


def test_stack_cover_becomes_ready_with_thumbnails(aws: Any, target: Target) -> None:
    api = Api(target.stack_api_url, target.stack_keys)
    cover = base64.b64encode(image("JPEG", (900, 700), (90, 90, 200))).decode()
    status, created = api.post("/books", {"title": "Stack cover", "authors": [unique("Stack")], "cover": cover})
    assert status == 202, created
    book = api.ready(created["book"]["id"], timeout=180)
    prefix = f"covers/{book['id']}/v{book['cover']['version']}/"
    s3 = aws("s3")
    keys = [
        o["Key"] for o in s3.list_objects_v2(Bucket=target.name("media", target.stack_stage), Prefix=prefix)["Contents"]
    ]
    bodies = [s3.get_object(Bucket=target.name("media", target.stack_stage), Key=k)["Body"].read() for k in keys]
    assert any(b[:4] == b"RIFF" and b[8:12] == b"WEBP" for b in bodies), keys
