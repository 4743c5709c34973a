"""Covers end to end on the deployed stack: inline, PUT binary, presigned POST through the S3
notification; thumbnails (WebP included) read back from S3; POST-to-ready measured cold and warm."""

from __future__ import annotations

import time
from typing import Any

import requests
from support import Api, Target, image, unique

WEBP = (b"RIFF", b"WEBP")


def _thumbnails_in_s3(aws: Any, target: Target, book: dict[str, Any]) -> dict[str, bytes]:
    """The objects under the book's current cover version, by key (originals left out)."""
    s3, bucket = aws("s3"), target.name("media")
    prefix = f"covers/{book['id']}/v{book['cover']['version']}/"
    keys = [o["Key"] for o in s3.list_objects_v2(Bucket=bucket, Prefix=prefix).get("Contents", [])]
    return {k: s3.get_object(Bucket=bucket, Key=k)["Body"].read() for k in keys if not k.endswith("/original")}


def _assert_thumbnails(aws: Any, target: Target, book: dict[str, Any]) -> None:
    assert book["cover"]["sizes"], book
    found = _thumbnails_in_s3(aws, target, book)
    webp = [k for k, body in found.items() if body[:4] == WEBP[0] and body[8:12] == WEBP[1]]
    jpeg = [k for k, body in found.items() if body[:3] == b"\xff\xd8\xff"]
    assert webp, f"no WebP thumbnail in S3: {sorted(found)}"
    assert jpeg, f"no JPEG thumbnail in S3: {sorted(found)}"
    for url in book["cover"]["thumbnails"].values() if isinstance(book["cover"]["thumbnails"], dict) else []:
        if isinstance(url, str) and url.startswith("http"):
            assert requests.get(url, timeout=30).status_code == 200, url


def _post_to_ready(api: Api, color: tuple[int, int, int]) -> tuple[dict[str, Any], float]:
    began = time.monotonic()
    status, created = api.post(
        "/books", {"title": "Inline", "authors": [unique("Cover")], "cover": _b64(image("JPEG", color=color))}
    )
    assert status == 202, created
    book = api.ready(created["book"]["id"], timeout=180)
    return book, time.monotonic() - began


def _b64(data: bytes) -> str:
    import base64

    return base64.b64encode(data).decode()


def test_inline_cover_becomes_ready_with_webp_thumbnails_cold_then_warm(
    api: Api, aws: Any, target: Target, timings: dict[str, float]
) -> None:
    book, cold = _post_to_ready(api, (10, 120, 200))
    _assert_thumbnails(aws, target, book)
    warm_book, warm = _post_to_ready(api, (200, 120, 10))
    _assert_thumbnails(aws, target, warm_book)
    timings["post_to_ready_cold_seconds"] = round(cold, 2)
    timings["post_to_ready_warm_seconds"] = round(warm, 2)


def test_put_binary_cover_makes_a_new_ready_version(api: Api, aws: Any, target: Target) -> None:
    status, created = api.post("/books", {"title": "Binary", "authors": [unique("Binary")]})
    assert status == 202, created
    book_id = created["book"]["id"]
    status, answer = api.put(f"/books/{book_id}/cover", data=image("PNG", (800, 600)), content_type="image/png")
    assert status == 202, answer
    book = api.ready(book_id, timeout=180)
    assert book["cover"]["version"] >= 1
    _assert_thumbnails(aws, target, book)


def test_presigned_post_upload_goes_through_the_s3_notification_to_ready(api: Api, aws: Any, target: Target) -> None:
    photo = image("JPEG", (1600, 1200), (30, 160, 60))
    status, created = api.post(
        "/books",
        {
            "title": "Upload",
            "authors": [unique("Upload")],
            "cover_upload": {"content_type": "image/jpeg", "size": len(photo)},
        },
    )
    assert status == 202, created
    assert created["book"]["cover_status"] == "awaiting_upload"
    upload = created["upload"]
    posted = requests.post(
        upload["url"], data=upload["fields"], files={"file": ("c.jpg", photo, "image/jpeg")}, timeout=60
    )
    assert posted.status_code in (200, 201, 204), posted.text
    book = api.ready(created["book"]["id"], timeout=180)
    _assert_thumbnails(aws, target, book)
