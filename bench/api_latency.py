"""API response time for creating a book with a 12-megapixel JPEG cover, over real HTTP
(`chalice local` → the embedded emulator): this project's asynchronous `POST /books` vs
the original design's resize-in-the-request, and this project's eager mode; and the direct
upload (`cover_upload`: the API signs an S3 POST, the client sends the bytes to S3), with
the client's total time (API call + upload) beside the API's.

  python -m bench.api_latency [--requests 15]
"""

from __future__ import annotations

import argparse
import base64
import time
from typing import Any

import requests

from bench.common import ROOT, chalice_local, emulator, photo_jpeg, print_table, save, summary


def _measure(url: str, body: dict[str, Any], headers: dict[str, str], count: int) -> list[float]:
    session = requests.Session()
    session.post(f"{url}/books", json=body, headers=headers, timeout=120).raise_for_status()  # warm
    samples = []
    for _ in range(count):
        started = time.perf_counter()
        response = session.post(f"{url}/books", json=body, headers=headers, timeout=120)
        samples.append(time.perf_counter() - started)
        response.raise_for_status()
    return samples


def _measure_direct(url: str, body: dict[str, Any], headers: dict[str, str], cover: bytes, count: int) -> Any:
    """API time of `POST /books` with `cover_upload`, and the client's total with the upload to S3."""
    session = requests.Session()
    api, total = [], []
    for i in range(count + 1):
        started = time.perf_counter()
        response = session.post(f"{url}/books", json=body, headers=headers, timeout=120)
        answered = time.perf_counter()
        response.raise_for_status()
        upload = response.json()["upload"]
        files = {"file": ("cover.jpg", cover, "image/jpeg")}
        sent = session.post(upload["url"], data=upload["fields"], files=files, timeout=120)
        finished = time.perf_counter()
        if sent.status_code != 204:
            raise RuntimeError(f"upload refused: {sent.status_code} {sent.text}")
        if i:  # the first request warms up
            api.append(answered - started)
            total.append(finished - started)
    return api, total


def main(argv: list[str] | None = None) -> dict[str, Any]:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--requests", type=int, default=15)
    args = parser.parse_args(argv)
    cover = photo_jpeg(4000, 3000)
    body = {"title": "Benchmark", "authors": ["Ann Leckie"], "cover": base64.b64encode(cover).decode()}
    with emulator():
        from infra.local import create_api_key

        key = create_api_key("bench")
        auth = {"Authorization": f"Bearer {key}"}
        samples: dict[str, list[float]] = {}
        from chalicelib.platform.config import get_settings

        names = {"MEDIA_BUCKET": get_settings().media_bucket, "BOOKS_TABLE": get_settings().books_table}
        with chalice_local(ROOT / "bench" / "original_app", names) as url:
            samples["original: resize in the request"] = _measure(url, body, {}, args.requests)
        with chalice_local(ROOT, {}) as url:
            samples["this project: 202 + tasks on SQS"] = _measure(url, body, auth, args.requests)
        with chalice_local(ROOT, {"TASKS_EAGER": "1"}) as url:
            samples["this project, TASKS_EAGER=1"] = _measure(url, body, auth, args.requests)
        direct: dict[str, Any] = {k: v for k, v in body.items() if k != "cover"}
        direct["cover_upload"] = {"content_type": "image/jpeg", "size": len(cover)}
        big = photo_jpeg(4000, 3000, quality=100, grain=24)  # a phone photo's ~12 MB
        with chalice_local(ROOT, {}) as url:
            api, total = _measure_direct(url, direct, auth, cover, args.requests)
            samples["this project: direct upload, API only"] = api
            samples["this project: direct upload, client total (API + S3 POST)"] = total
            direct["cover_upload"]["size"] = len(big)
            _, total = _measure_direct(url, direct, auth, big, args.requests)
            samples[f"direct upload of a {len(big) / 1e6:.0f} MB photo, client total"] = total
    base = summary(samples["original: resize in the request"])["p50"]
    rows = []
    for name, values in samples.items():
        s = summary(values)
        rows.append([name, s["n"], s["p50"] * 1000, s["p95"] * 1000, s["p99"] * 1000, base / s["p50"]])
    print_table(
        f"POST /books with a 12 MP JPEG cover ({len(cover) / 1e6:.2f} MB), sequential requests",
        ["design", "requests", "p50 ms", "p95 ms", "p99 ms", "speed-up vs original (p50)"],
        rows,
    )
    data = {"cover_bytes": len(cover), "samples": samples}
    save("api_latency", data)
    return data


if __name__ == "__main__":
    main()
