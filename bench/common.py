"""What the benchmarks share: an emulator with the stage's resources, statistics, tables."""

from __future__ import annotations

import io
import json
import os
import platform
import statistics
import subprocess
import sys
import tempfile
import time
import uuid
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import requests

ROOT = Path(__file__).resolve().parent.parent
RESULTS = ROOT / "bench" / "results"

BENCH_ENV = {
    "AWS_ACCESS_KEY_ID": "test",
    "AWS_SECRET_ACCESS_KEY": "test",
    "AWS_DEFAULT_REGION": "us-east-1",
    "AWS_REGION": "us-east-1",
    "STAGE": "bench",
    "AUTH_MODE": "api_key",
    "MAIL_SENDER": "books@example.com",
    "RETRY_BACKOFF_BASE": "1",
    "RETRY_BACKOFF_CAP": "2",
    "MEDIA_VISIBILITY_TIMEOUT": "60",
    "DEFAULT_VISIBILITY_TIMEOUT": "60",
    "POWERTOOLS_LOG_LEVEL": "WARNING",  # figures, not task logs, on stdout
    "POWERTOOLS_METRICS_DISABLED": "true",
}


def apply_env(extra: dict[str, str] | None = None) -> dict[str, str]:
    """Put the benchmark settings (and a unique resource prefix) into os.environ."""
    os.environ.update(BENCH_ENV)
    os.environ.setdefault("RESOURCE_PREFIX", f"bookshelf-bench-{uuid.uuid4().hex[:8]}")
    os.environ.update(extra or {})
    if str(ROOT) not in sys.path:
        sys.path.insert(0, str(ROOT))
    return dict(os.environ)


@contextmanager
def emulator(extra_env: dict[str, str] | None = None) -> Iterator[str]:
    """An embedded emulator with every resource of the app; yields its endpoint."""
    apply_env(extra_env)
    from devtools.emulator import start_process

    log = tempfile.NamedTemporaryFile(prefix="bench-emulator-", suffix=".log", delete=False)
    proc, endpoint = start_process(log=log)
    os.environ["AWS_ENDPOINT_URL"] = endpoint
    try:
        from infra.local import create_all

        create_all()
        yield endpoint
    finally:
        proc.terminate()
        proc.wait(timeout=10)


def summary(samples: Sequence[float]) -> dict[str, float]:
    """Median, p95, p99 and mean of `samples`."""
    ordered = sorted(samples)

    def pct(p: float) -> float:
        return ordered[min(len(ordered) - 1, max(0, round(p / 100 * (len(ordered) - 1))))]

    return {
        "n": len(ordered),
        "p50": statistics.median(ordered),
        "p95": pct(95),
        "p99": pct(99),
        "mean": statistics.fmean(ordered),
    }


def print_table(title: str, headers: Sequence[str], rows: Sequence[Sequence[Any]]) -> None:
    """A Markdown table on stdout."""

    def cell(value: Any) -> str:
        if isinstance(value, float):
            return f"{value:,.3f}" if abs(value) < 10 else f"{value:,.1f}"
        return str(value)

    print(f"\n### {title}\n")
    print("| " + " | ".join(headers) + " |")
    print("| " + " | ".join("---" for _ in headers) + " |")
    for row in rows:
        print("| " + " | ".join(cell(v) for v in row) + " |")
    sys.stdout.flush()


def save(name: str, data: dict[str, Any]) -> Path:
    """Write the figures to bench/results/<name>.json, with the machine they came from."""
    RESULTS.mkdir(parents=True, exist_ok=True)
    path = RESULTS / f"{name}.json"
    data = {
        "benchmark": name,
        "when": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
        "machine": {"cpus": os.cpu_count(), "python": platform.python_version(), "platform": platform.platform()},
        **data,
    }
    path.write_text(json.dumps(data, indent=2, default=str) + "\n")
    return path


def photo_jpeg(
    width: int = 4000, height: int = 3000, quality: int = 85, orientation: int | None = None, grain: float = 0
) -> bytes:
    """A photo-like JPEG (gradients, shapes, mild noise) of width x height pixels.

    `grain` (a standard deviation) adds sensor-like noise at full resolution, which makes the
    file as large as a phone's (grain 24 at quality 100: ~1 byte per pixel) instead of ~0.1.
    """
    from PIL import Image, ImageChops, ImageDraw, ImageFilter

    small = Image.linear_gradient("L").resize((width // 8, height // 8))
    noise = Image.effect_noise((width // 8, height // 8), 40)
    im = Image.merge("RGB", (small, noise, small.transpose(Image.Transpose.FLIP_LEFT_RIGHT)))
    im = im.resize((width, height), Image.Resampling.BILINEAR).filter(ImageFilter.GaussianBlur(2))
    draw = ImageDraw.Draw(im)
    for i in range(12):
        x, y = (i * 977) % width, (i * 613) % height
        draw.ellipse((x, y, x + width // 6, y + height // 6), fill=(40 * i % 255, 200, 90 * i % 255))
    if grain:
        noise = Image.effect_noise((width, height), grain).convert("RGB")
        im = ImageChops.add(im, noise, scale=2.0, offset=-64)
    out = io.BytesIO()
    exif = Image.Exif()
    if orientation:
        exif[0x0112] = orientation
    im.save(out, "JPEG", quality=quality, exif=exif.tobytes())
    return out.getvalue()


def run_module(module: str, *args: str, env: dict[str, str] | None = None, timeout: float = 900) -> str:
    """Run `python -m module args` in a fresh interpreter; returns its stdout."""
    done = subprocess.run(
        [sys.executable, "-m", module, *args],
        cwd=ROOT,
        env={**os.environ, **(env or {})},
        capture_output=True,
        text=True,
        timeout=timeout,
    )
    if done.returncode != 0:
        raise RuntimeError(f"{module} failed:\n{done.stdout[-2000:]}\n{done.stderr[-4000:]}")
    return done.stdout


def run_worker(module: str, *args: str) -> Any:
    """Run `python -m module --worker ...` in a fresh interpreter; its last stdout line, as JSON."""
    return json.loads(run_module(module, "--worker", *args).strip().splitlines()[-1])


def peak_rss_mb() -> float:
    """This process's peak resident memory (VmHWM: unlike ru_maxrss, not inherited over exec)."""
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) / 1024
    import resource

    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def wait_until_answering(
    url: str, timeout: float = 1, within: float = 60, ok: Callable[[int], bool] = lambda status: True
) -> None:
    """Poll `url` until a server answers it (with a status `ok` accepts), for at most `within` seconds."""
    deadline = time.monotonic() + within
    while time.monotonic() < deadline:
        try:
            if ok(requests.get(url, timeout=timeout).status_code):
                return
        except requests.RequestException:
            pass
        time.sleep(0.2)


# `chalice local` with Nagle's algorithm off on its sockets. Its http.server writes the headers
# and the body of an answer in two sends; with Nagle on, the second waits for the client's
# delayed ACK (~40 ms on Linux) on every keep-alive request, a constant of the local server that
# API Gateway does not have and that drowned the difference between the designs. Every design is
# served the same way.
_CHALICE_LOCAL = (
    "import socketserver, sys; socketserver.StreamRequestHandler.disable_nagle_algorithm = True; "
    "from chalice.cli import main; sys.argv[0] = 'chalice'; sys.exit(main())"
)


@contextmanager
def chalice_local(project: Path, env: dict[str, str]) -> Iterator[str]:
    """`chalice local` for `project` on a free port, Nagle off; yields its base URL."""
    from devtools.emulator import free_port

    port = free_port()
    proc = subprocess.Popen(
        [sys.executable, "-c", _CHALICE_LOCAL, "local", "--stage", "local", "--port", str(port), "--no-autoreload"],
        cwd=project,
        env={**os.environ, **env},
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    url = f"http://127.0.0.1:{port}"
    try:
        wait_until_answering(url + "/", timeout=1)
        yield url
    finally:
        proc.terminate()
        proc.wait(timeout=10)
