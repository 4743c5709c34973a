"""The one-screen summary of a benchmark run: each goal of issue 24, today's figure, the ratio.

`bench.run_all` calls `write()` after the benchmarks; it reads the figures they saved in
bench/results/ and replaces the table between the markers in bench/README.md, so the table
is always a run's output, never copied by hand. Alone, it rebuilds the table from the saved
figures of the last run:

  python -m bench.summary
"""

from __future__ import annotations

import json
import os
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from bench.common import RESULTS, ROOT, summary

README = ROOT / "bench" / "README.md"
BEGIN = "<!-- summary: written by bench/run_all.py, do not edit by hand -->"
END = "<!-- end of summary -->"

#: (goal, target, figure) where figure(results) gives (today's figure, ratio, met); None if not run.
Row = tuple[str, str, str, str, str]
Figure = Callable[[dict[str, Any]], tuple[str, str, bool]]


def _p50(values: list[float]) -> float:
    return float(summary(values)["p50"])


def _api(key: str, goal: float) -> Figure:
    def figure(results: dict[str, Any]) -> tuple[str, str, bool]:
        samples = results["api_latency"]["samples"]
        base = _p50(samples["original: resize in the request"])
        ours = _p50(samples[key])
        ratio = base / ours
        return f"p50 {ours * 1000:.1f} vs {base * 1000:.1f} ms", f"{ratio:.1f}x", ratio >= goal

    return figure


def _thumb_medians(results: dict[str, Any], variant: str) -> dict[str, float]:
    """Median CPU seconds per image (every thread): on a shared machine the steadier measure."""
    return {name: _p50(r["cpu"]) for name, r in results["thumbnails"]["results"][variant].items()}


def _thumb_speedup(images: tuple[str, ...], goal: float) -> Figure:
    def figure(results: dict[str, Any]) -> tuple[str, str, bool]:
        naive, ours = _thumb_medians(results, "naive (original)"), _thumb_medians(results, "ours, full set")
        ratios = [naive[name] / ours[name] for name in images]
        shown = ", ".join(f"{ours[n] * 1000:.0f} vs {naive[n] * 1000:.0f} ms CPU" for n in images)
        return shown, " / ".join(f"{r:.1f}x" for r in ratios), min(ratios) >= goal

    return figure


def _thumb_vs_pyvips(results: dict[str, Any]) -> tuple[str, str, bool]:
    ours, vips = _thumb_medians(results, "ours, full set"), _thumb_medians(results, "pyvips")
    ours_rate, vips_rate = len(ours) / sum(ours.values()), len(vips) / sum(vips.values())
    return (
        f"{ours_rate:.1f} vs {vips_rate:.1f} images per CPU second",
        f"{ours_rate / vips_rate:.2f}x",
        ours_rate > vips_rate,
    )


def _thumb_worst_format(results: dict[str, Any]) -> tuple[str, str, bool]:
    ours, vips = _thumb_medians(results, "ours, full set"), _thumb_medians(results, "pyvips")
    worst = max(ours, key=lambda n: ours[n] / vips[n])
    ratio = ours[worst] / vips[worst]
    return (
        f"worst: {worst}, {ours[worst] * 1000:.0f} vs {vips[worst] * 1000:.0f} ms CPU",
        f"{ratio:.2f}x pyvips' time",
        ratio <= 1.10,
    )


def _cold_start(function: str, limit_ms: float) -> Figure:
    """The init's best CPU time of the runs, on the deployment zip (bench/cold_start.py): the
    figure least moved by a loaded machine (wall time counts other processes' turns, and
    load only ever adds); the median wall time beside it."""

    def figure(results: dict[str, Any]) -> tuple[str, str, bool]:
        goal = results["cold_start"]["goals"][function]
        init = float(goal["init_ms"])
        shown = f"{init:.0f} ms init ({goal['measure']}; median wall {goal['median_wall_ms']:.0f} ms)"
        return shown, f"{init / limit_ms:.2f} of the limit", init < limit_ms

    return figure


def _fanout(results: dict[str, Any]) -> tuple[str, str, bool]:
    paged = next(r for r in results["fanout"]["results"] if r["design"] == "paged")
    rate = paged["subscribers"] / paged["seconds_to_last_mail"]
    twice = paged["addresses_mailed_twice_or_more"]
    shown = f"{paged['subscribers']:,} mailed in {paged['seconds_to_last_mail']:.1f} s, {twice} twice"
    # 1,000,000 in 15 minutes is 1,111 mails/s sustained.
    return shown, f"{rate:.0f} mails/s = {rate / 1111:.2f} of 1,111/s", rate >= 1111 and twice == 0


def _runner(results: dict[str, Any]) -> tuple[str, str, bool]:
    runs = results["runner_throughput"]["results"]
    rates = {batch: sorted(r["per_second"] for r in runs[batch])[len(runs[batch]) // 2] for batch in runs}
    ratio = rates["10"] / rates["1"]
    return f"{rates['10']:.0f} vs {rates['1']:.0f} messages/s", f"{ratio:.1f}x", ratio > 1


GOALS: list[tuple[str, str, Figure]] = [
    (
        "`POST /books`, direct upload (API only) vs the original",
        "≥ 20x",
        _api("this project: direct upload, API only", 20),
    ),
    ("`POST /books`, inline 12 MP cover vs the original", "≥ 6x", _api("this project: 202 + tasks on SQS", 6)),
    (
        "thumbnails, 12 MP JPEG sets vs naive (CPU time)",
        "≥ 8x",
        _thumb_speedup(("jpeg-12mp", "jpeg-12mp-exif-rotated"), 8),
    ),
    ("thumbnails, 48 MP JPEG set vs naive (CPU time)", "≥ 8x", _thumb_speedup(("jpeg-48mp",), 8)),
    ("thumbnails, full set, all formats vs pyvips (CPU time)", "above pyvips", _thumb_vs_pyvips),
    ("thumbnails, slowest format vs pyvips", "≤ 1.10x pyvips", _thumb_worst_format),
    ("cold start, API function", "< 250 ms", _cold_start("api", 250)),
    ("cold start, media worker", "< 300 ms", _cold_start("media_worker", 300)),
    ("mail fan-out (bench settings; 1,000,000 in ≤ 15 min needs 1,111/s)", "≥ 1,111 mails/s", _fanout),
    ("local runner, batch 10 vs batch 1", "> 1x", _runner),
]


def _load() -> dict[str, Any]:
    loaded = {}
    for path in RESULTS.glob("*.json"):
        loaded[path.stem] = json.loads(path.read_text())
    return loaded


def rows(results: dict[str, Any]) -> list[Row]:
    """One row per goal; a benchmark that did not run (or changed its figures' shape) says so."""
    out = []
    for goal, target, figure in GOALS:
        try:
            today, ratio, met = figure(results)
            out.append((goal, target, today, ratio, "yes" if met else "**no**"))
        except (KeyError, StopIteration, ZeroDivisionError, TypeError) as missing:
            out.append((goal, target, f"not measured ({type(missing).__name__} {missing})", "", ""))
    return out


def table(results: dict[str, Any]) -> str:
    """The Markdown summary: when, how loaded the machine was, each goal, the wall time."""
    run = results.get("run_all", {})
    load = " / ".join(f"{x:.1f}" for x in run.get("load_average", os.getloadavg()))
    when = run.get("when", time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()))
    wall_seconds: dict[str, float] = run.get("wall_seconds", {})
    lines = [
        f"`make bench`, {when}, {os.cpu_count()} cores, "
        f"load average at the end {load} (1/5/15 min). Ratios are the point; figures move with the load.",
        "",
        "| goal | target | today | ratio | met |",
        "| --- | --- | --- | --- | --- |",
    ]
    lines += ["| " + " | ".join(row) + " |" for row in rows(results)]
    if wall_seconds:
        each = ", ".join(f"{name} {seconds:.0f} s" for name, seconds in wall_seconds.items())
        lines += ["", f"Wall time {sum(wall_seconds.values()):.0f} s: {each}."]
    return "\n".join(lines)


def write(readme: Path = README) -> str:
    """Replace the table between the markers in bench/README.md with the last run's; return it."""
    text = table(_load())
    current = readme.read_text()
    start, end = current.index(BEGIN) + len(BEGIN), current.index(END)
    readme.write_text(current[:start] + "\n\n" + text + "\n\n" + current[end:])
    return text


if __name__ == "__main__":
    print(write())
