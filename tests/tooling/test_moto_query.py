"""The emulator's partition-only Query (devtools/emulator/query.py) pages exactly as DynamoDB does."""

from __future__ import annotations

import random
from typing import Any

import pytest


@pytest.mark.unit
def test_query_pages_walk_one_partition_in_key_order_with_filters_limits_and_start_keys(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    import boto3
    from moto import mock_aws

    from devtools.emulator import query

    query.patch()
    for name in ("AWS_ENDPOINT_URL", "AWS_ENDPOINT_URL_DYNAMODB"):  # moto in this process, not the emulator
        monkeypatch.delenv(name, raising=False)
    rng = random.Random(7)
    with mock_aws():
        db = boto3.client("dynamodb", region_name="us-east-1", aws_access_key_id="x", aws_secret_access_key="x")
        db.create_table(
            TableName="subs",
            KeySchema=[{"AttributeName": "pk", "KeyType": "HASH"}, {"AttributeName": "sk", "KeyType": "RANGE"}],
            AttributeDefinitions=[
                {"AttributeName": "pk", "AttributeType": "S"},
                {"AttributeName": "sk", "AttributeType": "S"},
            ],
            BillingMode="PAY_PER_REQUEST",
        )
        rows = {
            (pk, f"m{rng.randrange(10**6):07d}@x.org"): rng.choice(["confirmed", "pending"])
            for pk in "ab"
            for _ in range(300)
        }
        for (pk, sk), status in rows.items():
            db.put_item(TableName="subs", Item={"pk": {"S": pk}, "sk": {"S": sk}, "status": {"S": status}})

        def walk(limit: int, **extra: Any) -> list[str]:
            found, start = [], None
            while True:
                page = db.query(
                    TableName="subs",
                    KeyConditionExpression="pk = :p",
                    FilterExpression="#s = :c",
                    ExpressionAttributeNames={"#s": "status"},
                    ExpressionAttributeValues={":p": {"S": "a"}, ":c": {"S": "confirmed"}},
                    Limit=limit,
                    **({"ExclusiveStartKey": start} if start else {}),
                    **extra,
                )
                found += [item["sk"]["S"] for item in page["Items"]]
                start = page.get("LastEvaluatedKey")
                if not start:
                    return found

        expected = sorted(sk for (pk, sk), status in rows.items() if pk == "a" and status == "confirmed")
        assert walk(7) == expected and walk(50) == expected and walk(1000) == expected
        assert walk(13, ScanIndexForward=False) == expected[::-1]  # moto's own path, unchanged


@pytest.mark.unit
def test_index_query_reads_one_partition_and_pages_as_dynamodb_does(monkeypatch: pytest.MonkeyPatch) -> None:
    """A secondary index's Query (string and number sort keys, both directions, range
    conditions, limits, start keys; items without the sort key are no members) answers what
    DynamoDB would: the partition in index order, then the table's key on ties."""
    import boto3
    from moto import mock_aws

    from devtools.emulator import query

    query.patch()
    for name in ("AWS_ENDPOINT_URL", "AWS_ENDPOINT_URL_DYNAMODB"):
        monkeypatch.delenv(name, raising=False)
    rng = random.Random(11)
    with mock_aws():
        db = boto3.client("dynamodb", region_name="us-east-1", aws_access_key_id="x", aws_secret_access_key="x")
        db.create_table(
            TableName="tasks",
            KeySchema=[{"AttributeName": "id", "KeyType": "HASH"}],
            AttributeDefinitions=[
                {"AttributeName": name, "AttributeType": kind}
                for name, kind in (("id", "S"), ("bucket", "S"), ("at", "S"), ("shard", "S"), ("due", "N"))
            ],
            GlobalSecondaryIndexes=[
                {
                    "IndexName": "by-bucket",
                    "KeySchema": [
                        {"AttributeName": "bucket", "KeyType": "HASH"},
                        {"AttributeName": "at", "KeyType": "RANGE"},
                    ],
                    "Projection": {"ProjectionType": "ALL"},
                },
                {
                    "IndexName": "by-due",
                    "KeySchema": [
                        {"AttributeName": "shard", "KeyType": "HASH"},
                        {"AttributeName": "due", "KeyType": "RANGE"},
                    ],
                    "Projection": {"ProjectionType": "ALL"},
                },
            ],
            BillingMode="PAY_PER_REQUEST",
        )
        rows: dict[str, dict[str, Any]] = {}
        for i in range(400):
            item: dict[str, Any] = {"id": {"S": f"t{i:04d}"}, "bucket": {"S": rng.choice("ab")}}
            if i % 9:  # every ninth has no sort key: in no index
                item["at"] = {"S": f"2026-12-0{rng.randrange(1, 4)}T{rng.randrange(24):02d}"}  # ties on purpose
            if i % 3 == 0:  # sparse, numbers of several lengths
                item |= {"shard": {"S": "0"}, "due": {"N": str(rng.choice([5, 40, 300, 1000, 2500]))}}
            rows[item["id"]["S"]] = item
            db.put_item(TableName="tasks", Item=item)

        def walk(index: str, condition: str, values: dict[str, Any], limit: int, forward: bool) -> list[str]:
            found, start = [], None
            while True:
                page = db.query(
                    TableName="tasks",
                    IndexName=index,
                    KeyConditionExpression=condition,
                    ExpressionAttributeValues=values,
                    ScanIndexForward=forward,
                    Limit=limit,
                    **({"ExclusiveStartKey": start} if start else {}),
                )
                found += [item["id"]["S"] for item in page["Items"]]
                start = page.get("LastEvaluatedKey")
                if not start:
                    return found

        in_a = sorted((r["at"]["S"], key) for key, r in rows.items() if r["bucket"]["S"] == "a" and "at" in r)
        expected = [key for _, key in in_a]
        for limit in (1, 7, 1000):
            assert walk("by-bucket", "bucket = :b", {":b": {"S": "a"}}, limit, True) == expected
            assert walk("by-bucket", "bucket = :b", {":b": {"S": "a"}}, limit, False) == expected[::-1]
        since = [key for at, key in in_a if at >= "2026-12-02"]
        assert (
            walk(
                "by-bucket",
                "bucket = :b AND at >= :s",
                {":b": {"S": "a"}, ":s": {"S": "2026-12-02"}},
                5,
                False,
            )
            == since[::-1]
        )
        due = sorted((int(r["due"]["N"]), key) for key, r in rows.items() if "due" in r)
        upto = [key for d, key in due if d <= 300]
        assert walk("by-due", "shard = :s AND due <= :d", {":s": {"S": "0"}, ":d": {"N": "300"}}, 4, True) == upto
        assert walk("by-bucket", "bucket = :b", {":b": {"S": "c"}}, 5, True) == []
