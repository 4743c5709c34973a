"""Queue isolation, the original's flood test: with 1,000+ tasks waiting on the default
queue (after 100 concurrent requests), how long from `PUT /books/{id}/cover` to
`cover_status: ready`? Two queues (this design) vs both task kinds on one shared queue.

  python -m bench.queue_isolation [--rounds 2] [--backlog 1000]
"""

from __future__ import annotations

import argparse
import json
import time
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import requests

from bench.common import ROOT, chalice_local, emulator, photo_jpeg, print_table, run_worker, save, summary


def worker(shared: bool, rounds: int, backlog: int) -> dict[str, Any]:
    """One mode in a fresh process: queue names are read at import."""
    from bench.common import apply_env

    env = apply_env()
    extra: dict[str, str] = {}
    if shared:
        prefix = env["RESOURCE_PREFIX"]
        extra = {"MEDIA_QUEUE_NAME": f"{prefix}-default", "MEDIA_DLQ_NAME": f"{prefix}-default-dlq"}
    with emulator(extra):
        import app
        from bench.tasks import mail_like
        from chalicelib.ops.queues import depth
        from chalicelib.platform.config import get_settings
        from chalicelib.tasks.dispatch import dispatch
        from devtools.runner import EventSourceRunner
        from infra.local import create_api_key

        settings = get_settings()
        auth = {"Authorization": f"Bearer {create_api_key('bench')}"}
        cover = photo_jpeg(2400, 1600)
        latencies: list[float] = []
        backlogs: list[int] = []
        left: list[int] = []
        with chalice_local(ROOT, extra) as url:
            session = requests.Session()
            book = session.post(f"{url}/books", json={"title": "Isolated", "authors": ["Flood"]}, headers=auth).json()
            book_id = book["book"]["id"]

            def flood(i: int) -> int:
                body = {"title": f"Flood {i}", "authors": [f"Flood author {i % 10}"]}
                for attempt in range(10):  # chalice local listens with a backlog of 5: clients retry
                    try:
                        return requests.post(f"{url}/books", json=body, headers=auth, timeout=60).status_code
                    except requests.ConnectionError:
                        time.sleep(0.1 * (attempt + 1))
                return 0

            # Consumers stay stopped while the backlog builds, so it is really there at the PUT.
            with ThreadPoolExecutor(max_workers=100) as pool:  # the original's 100 concurrent clients
                codes = list(pool.map(flood, range(100)))
            for _ in range(rounds):
                waiting = depth(settings.default.name).visible
                for start in range(waiting, backlog, 100):
                    dispatch([mail_like.s(i) for i in range(start, min(backlog, start + 100))])
                backlogs.append(depth(settings.default.name).visible)
                with EventSourceRunner(app, wait_seconds=1):
                    started = time.perf_counter()
                    replaced = session.put(
                        f"{url}/books/{book_id}/cover", data=cover, headers={**auth, "Content-Type": "image/jpeg"}
                    )
                    replaced.raise_for_status()
                    version = replaced.json()["book"]["cover"]["version"]
                    deadline = started + 900
                    while time.perf_counter() < deadline:
                        got = session.get(f"{url}/books/{book_id}").json()
                        if got["cover_status"] == "ready" and got["cover"]["version"] == version:
                            break
                        time.sleep(0.1)
                    else:
                        raise TimeoutError(f"cover version {version} not ready after 900 s")
                    latencies.append(time.perf_counter() - started)
                    left.append(depth(settings.default.name).visible)
        return {
            "shared": shared,
            "flood_status_codes": sorted(set(codes)),
            "backlog_at_put": backlogs,
            "put_to_ready_seconds": latencies,
            "backlog_left_at_ready": left,
        }


def main(argv: list[str] | None = None) -> dict[str, Any]:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=2)
    parser.add_argument("--backlog", type=int, default=1000)
    parser.add_argument("--worker", choices=["shared", "separate"], help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.worker:
        print(json.dumps(worker(args.worker == "shared", args.rounds, args.backlog)))
        return {}
    results = {}
    for mode in ("separate", "shared"):
        results[mode] = run_worker(
            "bench.queue_isolation", mode, "--rounds", str(args.rounds), "--backlog", str(args.backlog)
        )
    separate = summary(results["separate"]["put_to_ready_seconds"])["p50"]
    rows = []
    for mode, label in (("separate", "two queues: media + default (this design)"), ("shared", "one shared queue")):
        result = results[mode]
        s = summary(result["put_to_ready_seconds"])
        rows.append(
            [
                label,
                min(result["backlog_at_put"]),
                s["n"],
                s["p50"],
                max(result["put_to_ready_seconds"]),
                min(result["backlog_left_at_ready"]),
                s["p50"] / separate,
            ]
        )
    print_table(
        "PUT /books/{id}/cover → cover_status ready, while the default queue has a backlog",
        ["queues", "default backlog at PUT", "rounds", "p50 s", "max s", "backlog left at ready", "vs two queues"],
        rows,
    )
    save("queue_isolation", {"results": results})
    return {"results": results}


if __name__ == "__main__":
    main()
