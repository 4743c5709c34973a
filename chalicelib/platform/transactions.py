"""One DynamoDB transaction (TransactWriteItems) whose cancellation says which item failed.

PynamoDB's `TransactWrite` sends its items grouped by kind (condition checks, deletes,
puts, updates), so its cancellation reasons are not in the order the caller added items.
This wrapper labels every item and maps the reasons back to the labels.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from functools import cache
from typing import Any

from pynamodb.connection import Connection
from pynamodb.exceptions import TransactWriteError
from pynamodb.expressions.condition import Condition
from pynamodb.expressions.update import Action
from pynamodb.models import Model
from pynamodb.transactions import TransactWrite

from chalicelib.platform.aws_errors import Fault, classify_code
from chalicelib.platform.config import get_settings
from chalicelib.platform.errors import ServiceUnavailable

MAX_ITEMS = 100  # TransactWriteItems limit
_KINDS = ("condition_check", "delete", "put", "update")


class TransactionCancelled(Exception):
    """A condition of the transaction failed; nothing was written.

    `failed` maps the label of each failing item to DynamoDB's reason code.
    """

    def __init__(self, failed: dict[str, str]) -> None:
        super().__init__(f"transaction cancelled: {failed}")
        self.failed = failed


class Transaction:
    """Collects labelled writes; `commit()` writes them all or none."""

    def __init__(self) -> None:
        self._tx = TransactWrite(connection=_connection())
        self._labels: dict[str, list[str]] = {kind: [] for kind in _KINDS}

    def put(self, label: str, model: Model, condition: Condition | None = None) -> None:
        """Write `model` whole (a new item, usually with `does_not_exist()`)."""
        self._tx.save(model, condition=condition)
        self._labels["put"].append(label)

    def update(self, label: str, model: Model, actions: Sequence[Action], condition: Condition | None = None) -> None:
        """Apply `actions` to the item with `model`'s key."""
        self._tx.update(model, actions=list(actions), condition=condition, add_version_condition=False)
        self._labels["update"].append(label)

    def delete(self, label: str, model: Model, condition: Condition | None = None) -> None:
        """Delete the item with `model`'s key."""
        self._tx.delete(model, condition=condition, add_version_condition=False)
        self._labels["delete"].append(label)

    def __len__(self) -> int:
        return sum(len(labels) for labels in self._labels.values())

    def commit(self) -> None:
        """Write everything, or raise TransactionCancelled / ServiceUnavailable having written nothing."""
        if len(self) > MAX_ITEMS:
            raise ValueError(f"a transaction holds at most {MAX_ITEMS} items, not {len(self)}")
        try:
            with self._tx:  # TransactWrite commits when its block ends
                pass
        except TransactWriteError as exc:
            if exc.cause_response_code != "TransactionCanceledException":
                raise  # an outage: the API's error handler answers 503
            order = [label for kind in _KINDS for label in self._labels[kind]]
            failed = {
                label: reason.code
                for label, reason in zip(order, exc.cancellation_reasons or [], strict=False)
                if reason is not None and reason.code not in (None, "None")
            }
            if not failed or any(classify_code(code) is Fault.TRANSIENT for code in failed.values()):
                raise ServiceUnavailable("the database is busy; nothing was written, try again") from None
            raise TransactionCancelled(failed) from None


@contextmanager
def transaction() -> Iterator[Transaction]:
    """A transaction committed when the block ends without an exception."""
    tx = Transaction()
    yield tx
    tx.commit()


@cache
def _connection() -> Any:
    """One connection per process, like the models' own: a new one builds a botocore session and
    client (loading the service model from disk), which cost more than the transaction itself."""
    settings = get_settings()
    # No host: botocore then reads AWS_ENDPOINT_URL_DYNAMODB before AWS_ENDPOINT_URL, as the models do.
    return Connection(
        region=settings.region,
        host=None,
        connect_timeout_seconds=5,
        read_timeout_seconds=20,
        max_retry_attempts=3,
    )
