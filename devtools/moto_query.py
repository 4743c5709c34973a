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

A Query of a secondary index with one hash key attribute gets the same treatment: moto's own
`query` sees only the items whose index hash key is the one asked for (one pass over the table
comparing plain values, no sort of the whole table), handed over in the index's order so that
its own sort of them is one linear pass. At 100,000 task records a day-index Query took
seconds; its cost is now the pass over the table plus the partition (bench/task_index.py).
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


def _plain(value: Any) -> Any:
    """A typed value as Python orders it the way moto does (numbers as Decimal, else the value)."""
    return value.cast_value if value.type == "N" else value.value


def _index_partition(table: Any, index_name: str, hash_key: Any) -> list[Any] | None:
    """The items of one partition of a secondary index, in the index's order, or None when the
    index is not one this fast path knows (several hash key attributes, an unknown name)."""
    index = next((i for i in table.all_indexes() if i.name == index_name), None)
    if index is None or hash_key is None:
        return None
    hashes = [k["AttributeName"] for k in index.schema if k["KeyType"] == "HASH"]
    ranges = [k["AttributeName"] for k in index.schema if k["KeyType"] == "RANGE"]
    if len(hashes) != 1 or len(ranges) > 1:
        return None
    name, wanted_type, wanted = hashes[0], hash_key.type, hash_key.value
    rows = []
    for stored in table.items.values():
        for item in stored.values() if table.range_key_attr else (stored,):
            value = item.attrs.get(name)
            if value is not None and value.value == wanted and value.type == wanted_type:
                if all(r in item.attrs for r in ranges):  # else no member of the index (moto skips it too)
                    rows.append(item)
    # moto sorts by (index range key, table hash key[, table range key]); already in that order,
    # its sort is one pass.
    order = [*ranges, table.hash_key_attr, *([table.range_key_attr] if table.range_key_attr else [])]

    def key(item: Any) -> tuple[Any, ...]:
        return tuple(_plain(item.attrs[a]) for a in order)

    return sorted(rows, key=key)


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
        if index and (partition := _index_partition(self, index, hash_key)) is not None:
            _view.items = (self, partition)  # moto's filters, sort, start key and limit run on it
            try:
                return query_original(self, hash_key, range_comparison, range_objs, limit, *args, **kwargs)
            finally:
                _view.items = None
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
