"""GetMetricData with extended statistics (p50, p95, p99.9 …), as CloudWatch answers them.

moto 5.2.5's `Statistics.get_statistics_for_type` knows Sum, Average, Minimum, Maximum and
SampleCount only: a percentile `Stat` gives None, which its response template then fails to
format, so the whole GetMetricData call answers 500. The dashboard's Workers panel asks for
Lambda's Duration p50 and p95 in its one call, so against moto it got nothing at all.

This answers `pNN` from the period's values (linear interpolation between the nearest ranks).
A statistic set (PutMetricData's StatisticValues) carries no values: it counts as its average,
SampleCount times, an approximation CloudWatch does not make (it returns no percentile for a
set whose minimum and maximum differ). Every other statistic is moto's.
"""

from __future__ import annotations

from typing import Any

_PATCHED = "_bookshelf_percentiles"


def percentile(samples: list[tuple[float, float]], pct: float) -> float | None:
    """The `pct` percentile (0-100) of weighted (value, count) samples; None without samples."""
    ordered = sorted((v, w) for v, w in samples if w > 0)
    total = sum(w for _, w in ordered)
    if not ordered:
        return None
    rank = pct / 100 * (total - 1) if total > 1 else 0.0

    def at(index: float) -> float:
        seen = 0.0
        for value, weight in ordered:
            seen += weight
            if index < seen:
                return value
        return ordered[-1][0]

    low, fraction = at(int(rank)), rank - int(rank)
    return low + fraction * (at(int(rank) + 1) - low) if fraction else low


def _pct(stat: str) -> float | None:
    """50.0 for "p50", 99.9 for "p99.9"; None for any other statistic."""
    if len(stat) < 2 or stat[0] not in "pP":
        return None
    try:
        value = float(stat[1:])
    except ValueError:
        return None
    return value if 0 <= value <= 100 else None


def patch() -> None:
    """Teach moto's statistics the percentiles (idempotent)."""
    from moto.cloudwatch.models import Statistics

    original = Statistics.get_statistics_for_type
    if getattr(original, _PATCHED, False):
        return

    def get_statistics_for_type(self: Any, stat: str) -> Any:
        pct = _pct(stat)
        if pct is None:
            return original(self, stat)
        samples = [(float(v), 1.0) for v in self.metric_single_values_list]
        samples += [(float(s.sum) / float(s.sample_count), float(s.sample_count)) for s in self.metric_aggregated_list]
        return percentile(samples, pct)

    setattr(get_statistics_for_type, _PATCHED, True)
    Statistics.get_statistics_for_type = get_statistics_for_type  # type: ignore[method-assign]
