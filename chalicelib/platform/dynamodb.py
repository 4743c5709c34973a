"""What every PynamoDB model shares: the table settings and the clock."""

from __future__ import annotations

from datetime import UTC, datetime

from pynamodb.exceptions import PynamoDBException

from chalicelib.platform.config import get_settings, region


def utcnow() -> datetime:
    """The current time, timezone-aware."""
    return datetime.now(UTC)


class _FromSettings(type):
    """A `Meta` whose table name and region are read when PynamoDB first asks for them (its first
    request), not when the model is declared: importing a model reads no settings.

    Properties of the metaclass, because PynamoDB reads `Meta.table_name` on the class.
    """

    table_setting: str

    @property
    def table_name(cls) -> str:
        return str(getattr(get_settings(), cls.table_setting))

    @property
    def region(cls) -> str:
        return region()


class TableMeta(metaclass=_FromSettings):
    """Settings every table's `Meta` inherits: region, endpoint from the environment, on-demand billing.

    A model's `Meta` names its table by the settings' attribute: `table_setting = "tasks_table"`.
    """

    host = None  # botocore reads AWS_ENDPOINT_URL_DYNAMODB, then AWS_ENDPOINT_URL (chalicelib/platform/aws.py)
    billing_mode = "PAY_PER_REQUEST"
    connect_timeout_seconds = 5
    read_timeout_seconds = 20
    max_retry_attempts = 3


def condition_failed(exc: PynamoDBException) -> bool:
    """A write its condition refused (a lost race or a state already reached), not an outage."""
    return exc.cause_response_code == "ConditionalCheckFailedException"
