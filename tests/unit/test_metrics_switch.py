"""Embedded Metric Format can be switched off like Powertools' metrics (POWERTOOLS_METRICS_DISABLED)."""

from __future__ import annotations

import json
from typing import Any

import pytest

from chalicelib.platform import observability


def _lines(out: str) -> list[dict[str, Any]]:
    parsed = []
    for line in out.splitlines():
        if line.startswith("{"):
            parsed.append(json.loads(line))
    return parsed


def _metrics(lines: list[dict[str, Any]]) -> dict[str, list[dict[str, Any]]]:
    """Metric name → the EMF blobs that carry it, after checking each blob's structure."""
    found: dict[str, list[dict[str, Any]]] = {}
    for blob in lines:
        if "_aws" not in blob:
            continue
        assert isinstance(blob["_aws"]["Timestamp"], int)
        for directive in blob["_aws"]["CloudWatchMetrics"]:
            assert directive["Namespace"] == "Bookshelf"
            for dimension_set in directive["Dimensions"]:
                assert all(isinstance(blob[name], str) for name in dimension_set)
            for metric in directive["Metrics"]:
                assert metric["Name"] in blob, "every metric needs its value at the top level"
                found.setdefault(metric["Name"], []).append(blob | {"_unit": metric["Unit"]})
    return found


@pytest.mark.parametrize("env", [{"POWERTOOLS_METRICS_DISABLED": "true"}, {"POWERTOOLS_DEV": "true"}])
def test_metrics_can_be_switched_off_like_powertools_metrics(
    env: dict[str, str], monkeypatch: pytest.MonkeyPatch, capfd: pytest.CaptureFixture[str]
) -> None:
    """`single_metric` ignores these switches; emit honours them (benchmarks, local debugging)."""
    observability.emit("EmailsSent")
    assert "EmailsSent" in _metrics(_lines(capfd.readouterr().out))
    for name, value in env.items():
        monkeypatch.setenv(name, value)
    observability.emit("EmailsSent")
    assert capfd.readouterr().out == ""
