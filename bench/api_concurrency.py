"""100 concurrent clients against the local API: `chalice local` (what `make run` used) vs the
local API Gateway (`devtools/gateway.py`, what it uses now). Each client posts books with a
small cover over its own keep-alive connection; connection errors are counted, not retried.

  python -m bench.api_concurrency [--clients 100] [--requests 3]
"""

from __future__ import annotations

import argparse
import base64
import io
import json
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import requests

from bench.common import ROOT, emulator, print_table, run_worker, save, summary, wait_until_answering
from devtools.local import api_command


def _small_cover() -> str:
    from PIL import Image

    buf = io.BytesIO()
    Image.new("RGB", (64, 48), (200, 30, 30)).save(buf, "JPEG")
    return base64.b64encode(buf.getvalue()).decode()


@contextmanager
def _serving(command: list[str]) -> Iterator[str]:
    port = command[command.index("--port") + 1]
    proc = subprocess.Popen(command, cwd=ROOT, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    url = f"http://127.0.0.1:{port}"
    try:
        wait_until_answering(f"{url}/books?limit=1", timeout=2, ok=lambda status: status == 200)
        yield url
    finally:
        proc.terminate()
        proc.wait(timeout=30)


def _load(url: str, key: str, clients: int, per_client: int) -> dict[str, Any]:
    cover = _small_cover()
    headers = {"Authorization": f"Bearer {key}", "Content-Type": "application/json"}
    body = {"title": "Concurrent", "authors": ["Ann Leckie"], "cover": cover}
    requests.post(f"{url}/books", json=body, headers=headers, timeout=120).raise_for_status()  # warm
    start = threading.Barrier(clients)
    latencies: list[float] = []
    statuses: dict[str, int] = {}
    lock = threading.Lock()

    def client(_: int) -> None:
        with requests.Session() as session:
            start.wait()
            for _ in range(per_client):
                began = time.perf_counter()
                try:
                    outcome = str(session.post(f"{url}/books", json=body, headers=headers, timeout=300).status_code)
                except requests.RequestException as exc:
                    outcome = type(exc).__name__
                with lock:
                    if outcome == "202":  # a reset comes fast: latency of the answered requests only
                        latencies.append(time.perf_counter() - began)
                    statuses[outcome] = statuses.get(outcome, 0) + 1

    began = time.perf_counter()
    with ThreadPoolExecutor(max_workers=clients) as pool:
        list(pool.map(client, range(clients)))
    wall = time.perf_counter() - began
    return {"latencies": latencies, "statuses": statuses, "wall_seconds": wall}


SERVERS = ("chalice local", "local API Gateway (make run)")


def _command(server: str, port: int) -> list[str]:
    if server == SERVERS[0]:
        return [
            str(Path(sys.executable).parent / "chalice"),
            "local",
            "--stage",
            "local",
            "--port",
            str(port),
            "--no-autoreload",
        ]
    return api_command("local", port)


def _worker(server: str, clients: int, per_client: int) -> None:
    """One server against a fresh emulator, in this fresh interpreter (clients are bound to one endpoint)."""
    with emulator():
        from devtools.emulator import free_port
        from infra.local import create_api_key

        key = create_api_key("bench")
        with _serving(_command(server, free_port())) as url:
            print(json.dumps(_load(url, key, clients, per_client)))


def main(argv: list[str] | None = None) -> dict[str, Any]:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--clients", type=int, default=100)
    parser.add_argument("--requests", type=int, default=3, help="per client")
    parser.add_argument("--worker", nargs=1, help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.worker:
        _worker(args.worker[0], args.clients, args.requests)
        return {}
    sizes = ("--clients", str(args.clients), "--requests", str(args.requests))
    results: dict[str, Any] = {server: run_worker("bench.api_concurrency", server, *sizes) for server in SERVERS}
    rows = []
    for name, result in results.items():
        total = sum(result["statuses"].values())
        ok = result["statuses"].get("202", 0)
        s = summary(result["latencies"])
        rows.append(
            [
                name,
                total,
                ok,
                total - ok,
                ", ".join(f"{k}: {v}" for k, v in sorted(result["statuses"].items()) if k != "202") or "-",
                s["p50"] * 1000,
                s["p95"] * 1000,
                total / result["wall_seconds"],
            ]
        )
    print_table(
        f"POST /books with a small cover, {args.clients} concurrent clients x {args.requests} requests",
        ["server", "requests", "202", "failed", "failures", "p50 ms (202s)", "p95 ms (202s)", "requests/s"],
        rows,
    )
    save("api_concurrency", {"clients": args.clients, "per_client": args.requests, "results": results})
    return results


if __name__ == "__main__":
    main()
