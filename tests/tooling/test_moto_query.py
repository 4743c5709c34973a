"""The emulator's partition-only Query (devtools/moto_query.py) pages exactly as DynamoDB does."""

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

    from devtools import moto_query

    moto_query.patch()
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
