"""DynamoDB `Query` and `Scan` answers written with `json.dumps`, not moto's shape-walking serializer.

moto 5.2.5 serializes every answer by walking botocore's output shape value by value
(`moto/core/serialize.py`): for a `Query` that is ~2 ms of emulator CPU per returned item
(bench/README §10), so reading a popular author's 20,000 subscribers cost the emulator ~40 s
of CPU, more than the fan-out it served. A `Query`/`Scan` result is already DynamoDB's wire
JSON once moto's `dynamo_to_dict` has run (`{"S": ...}` maps, numbers as strings), so this
dumps it directly. Anything `json.dumps` cannot write as it is (binary values, which moto
keeps as bytes for its serializer to base64, or timestamps), an unexpected key, or an
error, goes through moto's serializer unchanged.
"""

from __future__ import annotations

import json
from typing import Any

_PATCHED = "_bookshelf_plain_json"
_FAST = frozenset({"Query", "Scan"})
_KEYS = frozenset({"Count", "ScannedCount", "Items", "LastEvaluatedKey", "ConsumedCapacity"})


def plain(operation: str, result: Any) -> str | None:
    """The JSON body for `result` of `operation`, or None when moto's serializer must write it."""
    if operation not in _FAST or not isinstance(result, dict) or not set(result) <= _KEYS:
        return None
    if any(value is None for value in result.values()):
        return None
    try:
        return json.dumps(result, separators=(",", ":"))
    except (TypeError, ValueError):  # bytes, datetimes, NaN: moto's serializer knows their wire form
        return None


def patch() -> None:
    """Install the plain-JSON path into moto's DynamoDB results (idempotent)."""
    from moto.dynamodb.responses import DynamoResult

    original = DynamoResult.execute_result
    if getattr(original, _PATCHED, False):
        return

    def execute_result(self: Any, context: Any) -> Any:
        operation = context.operation_model
        body = plain(str(operation.name), self.result)
        if body is None:
            return original(self, context)
        version = operation.service_model.metadata.get("jsonVersion", "1.0")
        return 200, {"Content-Type": f"application/x-amz-json-{version}"}, body

    setattr(execute_result, _PATCHED, True)
    DynamoResult.execute_result = execute_result  # type: ignore[method-assign]
