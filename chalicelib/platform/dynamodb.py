"""What every PynamoDB model shares: the table settings and the clock."""

from __future__ import annotations

from datetime import UTC, datetime

from pynamodb.exceptions import PynamoDBException

from chalicelib.platform.config import get_settings

_settings = get_settings()


def utcnow() -> datetime:
    """The current time, timezone-aware."""
    return datetime.now(UTC)


class TableMeta:
    """Settings every table's `Meta` inherits: region, endpoint from the environment, on-demand billing."""

    region = _settings.region
    host = None  # botocore reads AWS_ENDPOINT_URL_DYNAMODB, then AWS_ENDPOINT_URL (chalicelib/platform/aws.py)
    billing_mode = "PAY_PER_REQUEST"
    connect_timeout_seconds = 5
    read_timeout_seconds = 20
    max_retry_attempts = 3


def condition_failed(exc: PynamoDBException) -> bool:
    """A write its condition refused (a lost race or a state already reached), not an outage."""
    return exc.cause_response_code == "ConditionalCheckFailedException"
