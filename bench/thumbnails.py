"""Thumbnail throughput and peak memory: this project's resizer vs the original's naive
`Image.open(...).resize((100, 100))` vs pyvips `thumbnail`, each in a fresh process.

  python -m bench.thumbnails [--repeat 5] [--rounds 3]

Each round runs every variant on every image once (a fresh process timing `--repeat`
calls), so the variants are interleaved in time: on a shared 2-core machine the speed
drifts by ±25 % over a minute, and measuring one variant after the other put that drift
into their ratio. The medians are over every round's timings. Each call's CPU time (every
thread of the process: libvips decodes on several) is measured too; on a loaded machine it is
the steadier measure of images/s per core, printed as a second table.
"""

from __future__ import annotations

import argparse
import io
import json
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from bench.common import peak_rss_mb, photo_jpeg, print_table, run_worker, save, summary


def _inputs(folder: Path) -> dict[str, Path]:
    from PIL import Image

    images: dict[str, bytes] = {
        "jpeg-12mp": photo_jpeg(4000, 3000),
        "jpeg-12mp-exif-rotated": photo_jpeg(4000, 3000, orientation=6),
        # A 48 MP phone photo as it arrives by direct upload: ~12 MB of grainy JPEG.
        "jpeg-48mp": photo_jpeg(8000, 6000, quality=90, grain=10),
    }
    base = Image.open(io.BytesIO(photo_jpeg(2000, 2000)))
    rgba = base.convert("RGBA")
    rgba.putalpha(Image.linear_gradient("L").resize(rgba.size))
    out = io.BytesIO()
    rgba.save(out, "PNG")
    images["png-4mp-alpha"] = out.getvalue()
    out = io.BytesIO()
    Image.open(io.BytesIO(photo_jpeg(3000, 2000))).save(out, "WEBP", quality=85)
    images["webp-6mp"] = out.getvalue()
    paths = {}
    for name, data in images.items():
        paths[name] = folder / name
        paths[name].write_bytes(data)
    return paths


def _ours(data: bytes) -> int:
    from chalicelib.covers.images import make_thumbnails

    return sum(len(t.data) for t in make_thumbnails(data))


def _ours_one(data: bytes) -> int:
    from chalicelib.covers.images import make_thumbnails

    return sum(len(t.data) for t in make_thumbnails(data, scales=(1,)) if t.content_type == "image/jpeg")


def _naive(data: bytes) -> int:
    """The original design: open, resize to 100x100 (no orientation, aspect squashed), save."""
    from PIL import Image

    im = Image.open(io.BytesIO(data)).convert("RGB")
    out = io.BytesIO()
    im.resize((100, 100), Image.Resampling.LANCZOS).save(out, "JPEG", quality=85)
    return len(out.getvalue())


def _pyvips(data: bytes) -> int:
    """pyvips as this project uses Pillow: decode once (one `thumbnail` to the largest size,
    shrink-on-load included), derive the smaller from it, JPEG + WebP of each."""
    import pyvips  # type: ignore[import-untyped]

    largest = pyvips.Image.thumbnail_buffer(data, 200, height=200, crop="centre")
    total = 0
    for thumb in (largest, largest.resize(0.5, kernel="lanczos3")):
        if thumb.hasalpha():
            thumb = thumb.flatten(background=[255, 255, 255])
        total += len(thumb.write_to_buffer(".jpg[Q=85,optimize_coding,interlace]"))
        total += len(thumb.write_to_buffer(".webp[Q=80]"))
    return total


def _decode_floor(data: bytes) -> int:
    """Only decode the whole image with Pillow, at full size: what any full decoder pays."""
    from PIL import Image

    with Image.open(io.BytesIO(data)) as im:
        im.load()
        return im.width * im.height


VARIANTS: dict[str, tuple[str, Callable[[bytes], int]]] = {
    "naive (original)": ("one 100 px JPEG, squashed, no EXIF", _naive),
    "ours, 100 px JPEG": ("one 100 px JPEG, cropped, EXIF", _ours_one),
    "ours, full set": ("100+200 px, JPEG+WebP", _ours),
    "pyvips": ("100+200 px, JPEG+WebP, decoded once", _pyvips),
    "decode floor (Pillow)": ("nothing: a full-size decode only", _decode_floor),
}


def worker(variant: str, path: Path, repeat: int) -> None:
    """In a fresh process: time one input `repeat` times; print JSON with the peak RSS."""
    func = VARIANTS[variant][1]
    data = path.read_bytes()
    func(data)  # warm: imports and codec set-up belong to cold start, not throughput
    timings, cpu = [], []
    for _ in range(repeat):
        started, cpu_started = time.perf_counter(), time.process_time()
        func(data)
        timings.append(time.perf_counter() - started)
        cpu.append(time.process_time() - cpu_started)
    print(json.dumps({"timings": timings, "cpu": cpu, "peak_rss_mb": peak_rss_mb()}))


def available(variant: str) -> bool:
    if variant != "pyvips":
        return True
    try:
        import pyvips  # noqa: F401
    except (ImportError, OSError):
        return False
    return True


def main(argv: list[str] | None = None) -> dict[str, Any]:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeat", type=int, default=5)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--worker", help=argparse.SUPPRESS)
    parser.add_argument("--image", type=Path, help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.worker:
        worker(args.worker, args.image, args.repeat)
        return {}
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp)
        inputs = _inputs(folder)
        variants = [v for v in VARIANTS if available(v)]
        for skipped in set(VARIANTS) - set(variants):
            print(f"{skipped}: not installed (pip install -r requirements-bench.txt); skipped", file=sys.stderr)
        results: dict[str, dict[str, Any]] = {
            v: {n: {"timings": [], "cpu": [], "peak_rss_mb": 0.0} for n in inputs} for v in variants
        }
        for _ in range(args.rounds):
            for name, path in inputs.items():
                for variant in variants:
                    run = run_worker("bench.thumbnails", variant, "--image", str(path), "--repeat", str(args.repeat))
                    pooled = results[variant][name]
                    pooled["timings"] += run["timings"]
                    pooled["cpu"] += run["cpu"]
                    pooled["peak_rss_mb"] = max(pooled["peak_rss_mb"], run["peak_rss_mb"])

    def total_seconds(variant: str) -> float:
        return sum(summary(r["timings"])["p50"] for r in results[variant].values())

    rows = []
    for variant, per_image in results.items():
        rows.append(
            [
                variant,
                VARIANTS[variant][0],
                *[
                    f"{summary(per_image[n]['timings'])['p50'] * 1000:.0f} / {per_image[n]['peak_rss_mb']:.0f}"
                    for n in inputs
                ],
                len(per_image) / total_seconds(variant),
                total_seconds("naive (original)") / total_seconds(variant),
            ]
        )
    naive = {n: summary(results["naive (original)"][n]["timings"])["p50"] for n in inputs}
    for variant in ("ours, full set", "pyvips"):
        if variant in results:
            medians = {n: summary(results[variant][n]["timings"])["p50"] for n in inputs}
            ratios = [f"{naive[n] / medians[n]:.1f}x" for n in inputs]
            rows.append([f"{variant}: speed-up vs naive", "per image", *ratios, "", ""])
    print_table(
        f"Thumbnail throughput, one core (median ms / peak RSS MB per image; {args.rounds} rounds of a fresh process "
        f"timing {args.repeat} calls, variants interleaved)",
        ["variant", "output", *inputs, "images/s/core", "speed vs naive"],
        rows,
    )
    cpu_rows = []
    for variant, per_image in results.items():
        medians = {n: summary(per_image[n]["cpu"])["p50"] for n in inputs}
        naive_cpu = {n: summary(results["naive (original)"][n]["cpu"])["p50"] for n in inputs}
        cpu_rows.append(
            [
                variant,
                *[f"{medians[n] * 1000:.0f} ({naive_cpu[n] / medians[n]:.1f}x)" for n in inputs],
                len(inputs) / sum(medians.values()),
            ]
        )
    print_table(
        "The same calls by CPU time (median CPU ms per image, all threads; speed-up vs naive)",
        ["variant", *inputs, "images/s per CPU second"],
        cpu_rows,
    )
    data = {"inputs": {n: p.name for n, p in inputs.items()}, "results": results}
    save("thumbnails", data)
    return data


if __name__ == "__main__":
    main()
