"""What every PynamoDB model shares: the table settings and the clock."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import UTC, datetime
from typing import TypeVar

from botocore.exceptions import ClientError
from pynamodb.exceptions import PynamoDBException, UpdateError
from pynamodb.expressions.condition import Condition
from pynamodb.expressions.update import Action
from pynamodb.models import Model

from chalicelib.platform.config import get_settings, region

_M = TypeVar("_M", bound=Model)


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


def updated_if(item: Model, actions: Sequence[Action], condition: Condition | None) -> bool:
    """One conditional UpdateItem on `item` (refreshed with what was written): False when the
    condition refused it, the one outcome the stores turn into "precondition did not hold"."""
    try:
        item.update(actions=list(actions), condition=condition)
    except UpdateError as exc:
        if condition_failed(exc):
            return False
        raise
    return True


def update_or_old(
    model: type[_M], hash_key: str, actions: Sequence[Action], condition: Condition
) -> tuple[_M | None, _M | None]:
    """One conditional UpdateItem: (the item as written, None), or (None, the item as it was)
    when the condition refused it (None, None when there was no item).

    PynamoDB builds the request; botocore sends it, because PynamoDB 6.1's `update_item`
    neither asks for `ReturnValuesOnConditionCheckFailure` nor keeps the refused item.
    With ALL_OLD a refused write already says why (Powertools' idempotency does the same),
    so the caller needs no read before or after it. An emulator that ignores the parameter
    answers without the item: the caller then reads it as before.
    """
    from chalicelib.platform.aws import client  # here: no botocore session at import

    kwargs = model._get_connection().get_operation_kwargs(
        hash_key,
        actions=list(actions),
        condition=condition,
        return_values="ALL_NEW",
        return_values_on_condition_failure="ALL_OLD",
    )
    try:
        written = client("dynamodb").update_item(**kwargs)
    except ClientError as exc:
        if exc.response.get("Error", {}).get("Code") != "ConditionalCheckFailedException":
            raise
        old = exc.response.get("Item")
        return None, model.from_raw_data(old) if old else None
    return model.from_raw_data(written["Attributes"]), None
