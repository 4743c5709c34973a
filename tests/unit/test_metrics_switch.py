"""Embedded Metric Format can be switched off like Powertools' metrics (POWERTOOLS_METRICS_DISABLED)."""

from __future__ import annotations

import pytest
from helpers import emf_metrics, json_lines

from chalicelib.platform import observability


@pytest.mark.parametrize("env", [{"POWERTOOLS_METRICS_DISABLED": "true"}, {"POWERTOOLS_DEV": "true"}])
def test_metrics_can_be_switched_off_like_powertools_metrics(
    env: dict[str, str], monkeypatch: pytest.MonkeyPatch, capfd: pytest.CaptureFixture[str]
) -> None:
    """`single_metric` ignores these switches; emit honours them (benchmarks, local debugging)."""
    observability.emit("EmailsSent")
    assert "EmailsSent" in emf_metrics(json_lines(capfd.readouterr().out))
    for name, value in env.items():
        monkeypatch.setenv(name, value)
    observability.emit("EmailsSent")
    assert capfd.readouterr().out == ""
