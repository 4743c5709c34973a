"""Cold start: what each Lambda function loads before its first piece of work, timed in
fresh interpreters, and the size of the deployment package.

Every function deploys the same app.py, so `import app` is shared; each handler then pulls
in what its first invocation needs. The API must never import Pillow, pyvips or the tasks'
implementations (tests/test_cold_path.py checks it).

Two builds, each in fresh interpreters, interleaved: `dev` (this venv's Python, the checkout)
and `zip` (the deployment zip unpacked and run by the runtime's Python 3.13 with the runtime's
boto3 from `.venv-build`: what Lambda runs, its shipped .pyc included). Init is measured as
CPU time (what a loaded machine's wall clock hides: other processes' turns are excluded) and
as wall time; the goals are judged on the zip's best CPU time of the runs (the figure least
moved by load: load only ever adds), the median beside it.

  python -m bench.cold_start [--runs 5] [--package-dir build/package-dev]
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
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
#: What must never be loaded by the API's init (tests/test_cold_path.py asserts it too).
HEAVY = ("PIL", "pyvips", "chalicelib.mail.fanout", "chalicelib.tasks.executor", "chalicelib.covers.images")

# The measurement itself, as a script: the zip build runs it under the runtime's Python, where
# neither this package nor the bench's requirements exist.
PROBE = """
import importlib, json, sys, time
path = json.loads(sys.argv[1])
started, started_cpu = time.perf_counter(), time.process_time()
import app
imported, imported_cpu = time.perf_counter(), time.process_time()
for module in path["modules"]:
    importlib.import_module(module)
from chalicelib.platform.aws import client
for service in path["clients"]:
    client(service)
ready, ready_cpu = time.perf_counter(), time.process_time()
print(json.dumps({
    "import_app_ms": (imported - started) * 1000,
    "path_ms": (ready - imported) * 1000,
    "total_ms": (ready - started) * 1000,
    "import_app_cpu_ms": (imported_cpu - started_cpu) * 1000,
    "total_cpu_ms": (ready_cpu - started_cpu) * 1000,
    "heavy_loaded": sorted(m for m in sys.modules if m.split(".")[0] in ("PIL", "pyvips") or m in path["heavy"]),
    "pil_loaded": "PIL" in sys.modules,
    "modules": len(sys.modules),
    "python": "%d.%d" % sys.version_info[:2],
}))
"""


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
        "heavy_loaded": sorted(m for m in sys.modules if m.split(".")[0] in ("PIL", "pyvips") or m in HEAVY),
        "pil_loaded": "PIL" in sys.modules,
        "modules": len(sys.modules),
        "python": "{}.{}".format(*sys.version_info[:2]),
    }


def probe(python: str, unpacked: Path, path: str) -> dict[str, Any]:
    """PROBE in a fresh runtime interpreter on the unpacked zip (its code first on the path)."""
    spec = json.dumps({**PATHS[path], "heavy": list(HEAVY)})
    env = {**os.environ, "PYTHONPATH": str(unpacked)}
    done = subprocess.run([python, "-c", PROBE, spec], cwd=unpacked, env=env, capture_output=True, text=True)
    if done.returncode != 0:
        raise RuntimeError(f"the zip's {path} failed to start:\n{done.stderr[-4000:]}")
    result: dict[str, Any] = json.loads(done.stdout.strip().splitlines()[-1])
    return {**result, "first_request_ms": None}


def bare_interpreter(python: str, runs: int) -> dict[str, float]:
    """A bare interpreter's start (median wall and CPU ms): the floor under every figure here."""
    walls, cpus = [], []
    for _ in range(runs):
        started = time.perf_counter()
        done = subprocess.run(
            [python, "-c", "import time; print(time.process_time())"], check=True, capture_output=True, text=True
        )
        walls.append((time.perf_counter() - started) * 1000)
        cpus.append(float(done.stdout) * 1000)
    return {"wall_ms": summary(walls)["p50"], "cpu_ms": summary(cpus)["p50"]}


#: What the zip is built from: a zip older than any of them is built again before it is measured.
_PACKAGE_SOURCES = (
    "app.py",
    "chalicelib",
    "infra",
    "requirements.txt",
    "devtools/lambda_build.py",
    ".chalice/config.json",
)


def _stale(archive: Path) -> bool:
    if not archive.exists():
        return True
    built = archive.stat().st_mtime
    files = [ROOT / name for name in _PACKAGE_SOURCES]
    files += [f for name in _PACKAGE_SOURCES if (ROOT / name).is_dir() for f in (ROOT / name).rglob("*.py")]
    return any(f.exists() and f.stat().st_mtime > built for f in files)


def package_size(package_dir: Path) -> dict[str, Any]:
    """Compressed and uncompressed size of the deployment zip, biggest top-level entries."""
    archive = package_dir / "deployment.zip"
    if _stale(archive):  # before the benchmark's environment is applied: the stage's own settings
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


def _zip_python() -> tuple[str | None, str]:
    """The build venv's Python 3.13 (the runtime's version, with the runtime's boto3), or why not."""
    from devtools import lambda_build, pythons

    try:
        return str(lambda_build.build_python()), ""
    except (pythons.PythonNotFound, subprocess.CalledProcessError) as missing:
        return None, str(missing)


def goal_figures(results: dict[str, dict[str, list[dict[str, Any]]]]) -> dict[str, dict[str, Any]]:
    """Per goal: the zip's best init CPU ms of the runs (the dev build's when there is no zip run)."""
    build = "zip" if results.get("zip", {}).get("api") else "dev"
    figures = {}
    for path, goal in GOALS_MS.items():
        runs = results[build][path]
        cpu = [r["total_cpu_ms"] for r in runs]
        figures[path] = {
            "build": build,
            "measure": f"best init CPU time of {len(runs)} fresh interpreters, {build} build",
            "init_ms": min(cpu),
            "median_cpu_ms": summary(cpu)["p50"],
            "median_wall_ms": summary([r["total_ms"] for r in runs])["p50"],
            "goal_ms": goal,
        }
    return figures


def _rows(build: str, paths: dict[str, list[dict[str, Any]]]) -> list[list[Any]]:
    rows = []
    for path, runs in paths.items():
        first = [r["first_request_ms"] for r in runs if r["first_request_ms"] is not None]
        heavy = sorted({name for r in runs for name in r.get("heavy_loaded", [])})
        rows.append(
            [
                f"{path} ({build}, Python {runs[0]['python']})",
                summary([r["import_app_cpu_ms"] for r in runs])["p50"],
                summary([r["total_cpu_ms"] for r in runs])["p50"],
                min(r["total_cpu_ms"] for r in runs),
                summary([r["import_app_ms"] for r in runs])["p50"],
                summary([r["total_ms"] for r in runs])["p50"],
                summary(first)["p50"] if first else "-",
                ", ".join(n for n in heavy if "." not in n or n.startswith("chalicelib")) or "none",
                runs[0]["modules"],
            ]
        )
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
    zip_python, no_zip = _zip_python()
    results: dict[str, dict[str, list[dict[str, Any]]]] = {"dev": {p: [] for p in PATHS}}
    if zip_python:
        results["zip"] = {p: [] for p in PATHS}
    order = list(PATHS)
    with emulator(), tempfile.TemporaryDirectory(prefix="bench-zip-") as scratch:
        unpacked = Path(scratch)
        with zipfile.ZipFile(args.package_dir / "deployment.zip") as zf:
            zf.extractall(unpacked)
        for run in range(args.runs):
            for path in order[run % len(order) :] + order[: run % len(order)]:  # rotate: no path always first
                results["dev"][path].append(run_worker("bench.cold_start", path))
                if zip_python:  # interleaved: both builds see the same load
                    results["zip"][path].append(probe(zip_python, unpacked, path))
    bare = {"dev": bare_interpreter(sys.executable, args.runs)}
    if zip_python:
        bare["zip"] = bare_interpreter(zip_python, args.runs)
    floors = "; ".join(f"{b}: {f['cpu_ms']:.0f} ms CPU, {f['wall_ms']:.0f} ms wall" for b, f in bare.items())
    print_table(
        f"Init in fresh interpreters, {args.runs} runs each (bare interpreter start, not included: {floors})",
        [
            "function (build)",
            "import app CPU ms (median)",
            "init CPU ms (median)",
            "init CPU ms (best)",
            "import app wall ms (median)",
            "init wall ms (median)",
            "first request ms",
            "heavy modules loaded",
            "modules",
        ],
        [row for build, paths in results.items() for row in _rows(build, paths)],
    )
    if not zip_python:
        print(f"(no zip build measured: {no_zip})")
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
    goals = goal_figures(results)
    print_table(
        "Cold-start goals (init = import app + path modules & clients; judged on the best CPU time)",
        ["function", "measure", "init ms", "median CPU ms", "median wall ms", "goal ms", "init / goal", "met"],
        [
            [
                path,
                g["measure"],
                g["init_ms"],
                g["median_cpu_ms"],
                g["median_wall_ms"],
                g["goal_ms"],
                f"{g['init_ms'] / g['goal_ms']:.2f}",
                "yes" if g["init_ms"] < g["goal_ms"] else "no",
            ]
            for path, g in goals.items()
        ],
    )
    data = {"results": results, "bare_interpreter": bare, "package": size, "goals_ms": GOALS_MS, "goals": goals}
    save("cold_start", data)
    return data


if __name__ == "__main__":
    main()
