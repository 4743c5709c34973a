"""Structured JSON logs and CloudWatch metrics (Embedded Metric Format) via Powertools."""

from __future__ import annotations

import logging

from aws_lambda_powertools import Logger
from aws_lambda_powertools.metrics import MetricUnit, single_metric
from aws_lambda_powertools.metrics.functions import is_metrics_disabled

from chalicelib.platform.config import get_settings

NAMESPACE = "Bookshelf"


class _Service(logging.Filter):
    """Stamps each record with the settings' app name as its `service`, read at the first log line:
    the logger is made at import, when no setting is read (the "bookshelf" logger app.py leaves to Powertools)."""

    def filter(self, record: logging.LogRecord) -> bool:
        record.service = get_settings().app_name
        return True


logger = Logger(service="bookshelf")
logger.addFilter(_Service())
_cold_start = True


def emit(name: str, value: float = 1, unit: MetricUnit = MetricUnit.Count, **dimensions: str) -> None:
    """Print one EMF metric with these dimensions (CloudWatch extracts it from the log).

    Honours POWERTOOLS_METRICS_DISABLED / POWERTOOLS_DEV, which `single_metric` ignores.
    """
    if is_metrics_disabled():
        return
    settings = get_settings()
    with single_metric(
        name=name,
        unit=unit,
        value=value,
        namespace=NAMESPACE,
        default_dimensions={"service": settings.app_name, "stage": settings.stage},
    ) as metric:
        for key, dim in dimensions.items():
            metric.add_dimension(name=key, value=dim)


def record_cold_start(function_name: str) -> None:
    """Emit the ColdStart metric on the first invocation of this process."""
    global _cold_start
    if _cold_start:
        _cold_start = False
        emit("ColdStart", function=function_name)
