"""The emulator's TransactWriteItems undoes a cancelled transaction item by item
(devtools/emulator/transactions.py) and must still be all-or-nothing, as DynamoDB is."""

from __future__ import annotations

import uuid
from collections.abc import Callable, Iterator
from typing import Any

import pytest
from botocore.exceptions import ClientError

KeyOf = Callable[[str], dict[str, Any]]


@pytest.fixture(scope="module", params=["hash", "hash+range"])
def table(request: pytest.FixtureRequest, aws: Callable[[str], Any]) -> Iterator[tuple[str, KeyOf]]:
    """A table of its own (with or without a range key) and a function from a name to its key."""
    ddb = aws("dynamodb")
    name = f"tx-test-{uuid.uuid4().hex[:8]}"
    schema = [{"AttributeName": "pk", "KeyType": "HASH"}]
    attributes = [{"AttributeName": "pk", "AttributeType": "S"}]
    if request.param == "hash+range":
        schema.append({"AttributeName": "sk", "KeyType": "RANGE"})
        attributes.append({"AttributeName": "sk", "AttributeType": "S"})

    def key(label: str) -> dict[str, Any]:
        return {"pk": {"S": "shared"}, "sk": {"S": label}} if request.param == "hash+range" else {"pk": {"S": label}}

    ddb.create_table(TableName=name, KeySchema=schema, AttributeDefinitions=attributes, BillingMode="PAY_PER_REQUEST")
    yield name, key
    ddb.delete_table(TableName=name)


def _items(ddb: Any, name: str) -> list[dict[str, Any]]:
    return sorted(ddb.scan(TableName=name, ConsistentRead=True)["Items"], key=repr)


def test_a_cancelled_transaction_leaves_every_item_as_it_was(aws: Any, table: Any) -> None:
    ddb, (name, key) = aws("dynamodb"), table
    run = uuid.uuid4().hex[:6]
    ddb.put_item(TableName=name, Item={**key(f"updated-{run}"), "n": {"N": "1"}, "tags": {"SS": ["a"]}})
    ddb.put_item(TableName=name, Item={**key(f"deleted-{run}"), "n": {"N": "2"}})
    before = _items(ddb, name)
    with pytest.raises(ClientError) as refused:
        ddb.transact_write_items(
            TransactItems=[
                {"Put": {"TableName": name, "Item": {**key(f"new-{run}"), "n": {"N": "3"}}}},
                {
                    "Update": {
                        "TableName": name,
                        "Key": key(f"updated-{run}"),
                        "UpdateExpression": "SET n = n + :one ADD tags :b",
                        "ExpressionAttributeValues": {":one": {"N": "1"}, ":b": {"SS": ["b"]}},
                    }
                },
                {"Delete": {"TableName": name, "Key": key(f"deleted-{run}")}},
                {
                    "ConditionCheck": {
                        "TableName": name,
                        "Key": key(f"absent-{run}"),
                        "ConditionExpression": "attribute_exists(pk)",
                    }
                },
            ]
        )
    error = refused.value.response
    assert error["Error"]["Code"] == "TransactionCanceledException"
    reasons = [reason["Code"] for reason in error["CancellationReasons"]]
    assert reasons == ["None", "None", "None", "ConditionalCheckFailed"]
    assert _items(ddb, name) == before


def test_an_item_named_twice_changes_nothing(aws: Any, table: Any) -> None:
    ddb, (name, key) = aws("dynamodb"), table
    run = uuid.uuid4().hex[:6]
    ddb.put_item(TableName=name, Item={**key(f"twice-{run}"), "n": {"N": "1"}})
    before = _items(ddb, name)
    with pytest.raises(ClientError) as refused:
        ddb.transact_write_items(
            TransactItems=[
                {"Put": {"TableName": name, "Item": {**key(f"other-{run}"), "n": {"N": "9"}}}},
                {"Put": {"TableName": name, "Item": {**key(f"twice-{run}"), "n": {"N": "2"}}}},
                {"Delete": {"TableName": name, "Key": key(f"twice-{run}")}},
            ]
        )
    assert refused.value.response["Error"]["Code"] == "ValidationException"
    assert _items(ddb, name) == before


def test_a_transaction_that_succeeds_applies_every_item(aws: Any, table: Any) -> None:
    ddb, (name, key) = aws("dynamodb"), table
    run = uuid.uuid4().hex[:6]
    ddb.put_item(TableName=name, Item={**key(f"gone-{run}"), "n": {"N": "1"}})
    ddb.transact_write_items(
        TransactItems=[
            {"Put": {"TableName": name, "Item": {**key(f"a-{run}"), "n": {"N": "1"}}}},
            {"Delete": {"TableName": name, "Key": key(f"gone-{run}")}},
        ]
    )
    assert ddb.get_item(TableName=name, Key=key(f"a-{run}"), ConsistentRead=True)["Item"]["n"] == {"N": "1"}
    assert "Item" not in ddb.get_item(TableName=name, Key=key(f"gone-{run}"), ConsistentRead=True)
