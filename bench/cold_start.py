"""Cold start: what each Lambda function loads before its first piece of work, timed in
fresh interpreters, and the size of the deployment package.

Every function deploys the same app.py, so `import app` is shared; each handler then pulls
in what its first invocation needs. The API must never import Pillow.

  python -m bench.cold_start [--runs 5] [--package-dir build/package-dev]
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import time
import zipfile
from collections import Counter
from pathlib import Path
from typing import Any

from bench.common import ROOT, emulator, print_table, run_module, run_worker, save, summary

# What each function's first invocation needs beyond `import app`: modules and clients.
# `app.py` loads the workers' consumer at its first call (chalicelib/platform/lazy.py), so it
# is counted here, as the clients are, though both are made at first use.
_WORKER = "chalicelib.tasks.worker"
PATHS: dict[str, dict[str, list[str]]] = {
    "api": {"modules": [], "clients": ["dynamodb", "sqs", "s3"]},
    "media_worker": {"modules": [_WORKER, "chalicelib.covers.images"], "clients": ["dynamodb", "sqs", "s3"]},
    "default_worker": {"modules": [_WORKER], "clients": ["dynamodb", "sqs", "ses"]},
}
# Issue 24's goals for the init (import app, the path's modules and clients), in ms.
GOALS_MS = {"api": 250.0, "media_worker": 300.0}


def worker(path: str) -> dict[str, Any]:
    """In a fresh interpreter: time `import app`, the path's modules and clients, and for
    the API a first real request (against the emulator in AWS_ENDPOINT_URL)."""
    import importlib

    started, started_cpu = time.perf_counter(), time.process_time()
    import app

    imported, imported_cpu = time.perf_counter(), time.process_time()
    for module in PATHS[path]["modules"]:
        importlib.import_module(module)
    from chalicelib.platform.aws import client

    for service in PATHS[path]["clients"]:
        client(service)
    ready, ready_cpu = time.perf_counter(), time.process_time()
    first_request = None
    if path == "api":
        from chalice.test import Client

        with Client(app.app) as http:
            response = http.http.get("/books?author=nobody")
            assert response.status_code == 200, response.body
        first_request = time.perf_counter() - ready
    return {
        "import_app_ms": (imported - started) * 1000,
        "path_ms": (ready - imported) * 1000,
        "total_ms": (ready - started) * 1000,
        # CPU time: what a loaded machine's wall clock hides (other processes' turns excluded)
        "import_app_cpu_ms": (imported_cpu - started_cpu) * 1000,
        "total_cpu_ms": (ready_cpu - started_cpu) * 1000,
        "first_request_ms": None if first_request is None else first_request * 1000,
        "pil_loaded": "PIL" in sys.modules,
        "modules": len(sys.modules),
    }


def interpreter_ms(runs: int) -> float:
    """Median start-up of a bare interpreter, to subtract mentally from the figures."""
    samples = []
    for _ in range(runs):
        started = time.perf_counter()
        subprocess.run([sys.executable, "-c", "pass"], check=True)
        samples.append((time.perf_counter() - started) * 1000)
    return summary(samples)["p50"]


def package_size(package_dir: Path) -> dict[str, Any]:
    """Compressed and uncompressed size of the deployment zip, biggest top-level entries."""
    archive = package_dir / "deployment.zip"
    if not archive.exists():  # before the benchmark's environment is applied: the stage's own settings
        run_module("infra", "--stage", "dev", "--package", str(package_dir))
    with zipfile.ZipFile(archive) as zf:
        infos = zf.infolist()
    by_top: Counter[str] = Counter()
    for info in infos:
        top = info.filename.split("/", 1)[0]
        by_top[top.split("-", 1)[0] if top.endswith(".dist-info") else top] += info.file_size
    return {
        "zip_mb": archive.stat().st_size / 2**20,
        "unzipped_mb": sum(i.file_size for i in infos) / 2**20,
        "files": len(infos),
        "largest": [(name, size / 2**20) for name, size in by_top.most_common(8)],
    }


def goal_rows(results: dict[str, list[dict[str, Any]]]) -> list[list[Any]]:
    """One line per goal: the median init against it (a ratio under 1.0 meets it)."""
    rows = []
    for path, goal in GOALS_MS.items():
        init = summary([r["total_ms"] for r in results[path]])["p50"]
        cpu = summary([r["total_cpu_ms"] for r in results[path]])["p50"]
        rows.append([path, init, cpu, goal, f"{init / goal:.2f}", "yes" if init < goal else "no"])
    return rows


def main(argv: list[str] | None = None) -> dict[str, Any]:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=5)
    parser.add_argument("--package-dir", type=Path, default=ROOT / "build" / "package-dev")
    parser.add_argument("--worker", choices=sorted(PATHS), help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.worker:
        print(json.dumps(worker(args.worker)))
        return {}
    size = package_size(args.package_dir)
    results: dict[str, list[dict[str, Any]]] = {path: [] for path in PATHS}
    order = list(PATHS)
    with emulator():
        for run in range(args.runs):
            for path in order[run % len(order) :] + order[: run % len(order)]:  # rotate: no path always first
                results[path].append(run_worker("bench.cold_start", path))
    bare = interpreter_ms(args.runs)
    rows = []
    for path, runs in results.items():
        first = [r["first_request_ms"] for r in runs if r["first_request_ms"] is not None]
        rows.append(
            [
                path,
                summary([r["import_app_ms"] for r in runs])["p50"],
                summary([r["path_ms"] for r in runs])["p50"],
                summary([r["total_ms"] for r in runs])["p50"],
                summary(first)["p50"] if first else "-",
                "yes" if any(r["pil_loaded"] for r in runs) else "no",
                runs[0]["modules"],
            ]
        )
    print_table(
        f"Init in a fresh interpreter, median of {args.runs} (bare interpreter start: {bare:.0f} ms)",
        [
            "function",
            "import app ms",
            "+ path modules & clients ms",
            "total ms",
            "first request ms",
            "Pillow",
            "modules",
        ],
        rows,
    )
    print_table(
        f"Deployment package ({args.package_dir.name}/deployment.zip, {size['files']} files)",
        ["zip MB", "unzipped MB", "Lambda limit (unzipped) MB", "largest entries (unzipped MB)"],
        [
            [
                size["zip_mb"],
                size["unzipped_mb"],
                250,
                ", ".join(f"{name} {mb:.1f}" for name, mb in size["largest"]),
            ]
        ],
    )
    print_table(
        "Cold-start goals (init = import app + path modules & clients, median)",
        ["function", "init ms", "init CPU ms", "goal ms", "init / goal", "met"],
        goal_rows(results),
    )
    data = {"results": results, "bare_interpreter_ms": bare, "package": size, "goals_ms": GOALS_MS}
    save("cold_start", data)
    return data


if __name__ == "__main__":
    main()
