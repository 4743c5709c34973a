"""A table Query whose cost is the partition's remaining rows, not the whole table, as on DynamoDB.

moto 5.2.5 answers every `Query` by sorting every item of the table (`Table.all_items`, tuples
of its own typed values), then walking the partition from its start to the
`ExclusiveStartKey` one typed comparison at a time. With 20,000 subscribers of one author a
fan-out's reads, not its mail, were what the bench measured (bench/README.md § 10).

For a Query of the base table (no index) in key order, on a string sort key, this hands moto's
own `query` only the partition's items after the start key, already in order (plain string
order: UTF-8 byte order for the ASCII keys the app writes), and no start key. moto's key
conditions, filters, limits, projections and `LastEvaluatedKey` run unchanged on that view.
Every other Query, and every other use of `all_items`, is moto's.
"""

from __future__ import annotations

import bisect
import threading
from typing import Any

_PATCHED = "_bookshelf_partition_query"
_view = threading.local()  # the items `all_items` returns during one fast-path query, per thread


def _partition_after(table: Any, hash_key: Any, start: dict[str, Any] | None) -> list[Any]:
    rows = table.items.get(hash_key) or {}
    ordered = sorted(rows.values(), key=lambda item: item.range_key.value)
    if not start:
        return ordered
    after = str((start.get(table.range_key_attr) or {}).get("S", ""))
    keys = [item.range_key.value for item in ordered]
    return ordered[bisect.bisect_right(keys, after) :]


def _fast(table: Any, hash_key: Any, start: dict[str, Any] | None, forward: bool, index: str | None) -> bool:
    if index or not forward or hash_key is None or not table.range_key_attr or table.range_key_type != "S":
        return False
    return not start or "S" in (start.get(table.range_key_attr) or {})


def patch() -> None:
    """Install the partition-only Query into moto's DynamoDB tables (idempotent)."""
    from moto.dynamodb.models.table import Table

    query_original, all_items_original = Table.query, Table.all_items
    if getattr(query_original, _PATCHED, False):
        return

    def all_items(self: Any) -> list[Any]:
        view = getattr(_view, "items", None)
        if view is not None and view[0] is self:
            return list(view[1])
        items: list[Any] = all_items_original(self)
        return items

    def query(
        self: Any, hash_key: Any, range_comparison: Any, range_objs: Any, limit: Any, *args: Any, **kwargs: Any
    ) -> Any:
        start, forward = args[0], args[1]
        index = args[3] if len(args) > 3 else kwargs.get("index_name")
        if not _fast(self, hash_key, start, forward, index):
            return query_original(self, hash_key, range_comparison, range_objs, limit, *args, **kwargs)
        _view.items = (self, _partition_after(self, hash_key, start))
        no_start: Any = None  # the view already begins after the start key
        try:
            return query_original(self, hash_key, range_comparison, range_objs, limit, no_start, *args[1:], **kwargs)
        finally:
            _view.items = None

    setattr(query, _PATCHED, True)
    Table.query = query  # type: ignore[method-assign]
    Table.all_items = all_items  # type: ignore[method-assign]
