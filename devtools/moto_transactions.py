"""TransactWriteItems in constant time on the embedded emulator, as on DynamoDB.

moto 5.2.5 makes a transaction undoable by deep-copying every table it names, once per
item that names it, before it starts, so a transaction costs more the larger its tables,
while a PutItem does not (bench/README.md § 9 has the figures). DynamoDB's transactions cost
the same at any table size, so the copy made every test and benchmark that writes through a
transaction slower the longer it ran, and made the transactional designs look worse than
they are.

This keeps moto's transaction logic (conditions, the per-item errors of
TransactionCanceledException) and changes only the undo: each item the transaction names
is copied before the transaction, and on any error those items (and the tables' stream
records) are put back. The emulator runs DynamoDB writes one at a time
(`emulator._dynamodb_writes`), so nothing else changes a table between the copy and the undo.
"""

from __future__ import annotations

import copy
from dataclasses import dataclass
from typing import Any

from moto.dynamodb.exceptions import DynamodbException

_PATCHED = "_bookshelf_constant_time"


class _TablesNotCopied:
    """`copy` as moto's DynamoDB backend sees it: a Table is returned as is, not deep-copied."""

    def __init__(self, table_type: type) -> None:
        self._table_type = table_type

    def deepcopy(self, obj: Any, memo: dict[int, Any] | None = None) -> Any:
        if isinstance(obj, self._table_type):
            return obj
        return copy.deepcopy(obj, memo)

    def __getattr__(self, name: str) -> Any:
        return getattr(copy, name)


@dataclass
class _Saved:
    """One item as it was before the transaction (None: it did not exist)."""

    table: Any
    hash_key: Any
    range_key: Any
    item: Any
    stream_records: int | None

    def restore(self) -> None:
        items = self.table.items
        if self.item is None:
            if self.range_key is not None:
                items.get(self.hash_key, {}).pop(self.range_key, None)
            else:
                items.pop(self.hash_key, None)
        elif self.range_key is not None:
            items[self.hash_key][self.range_key] = self.item
        else:
            items[self.hash_key] = self.item
        if self.stream_records is not None:
            del self.table.stream_shard.items[self.stream_records :]


def _key_of(table: Any, op_type: str, op: dict[str, Any]) -> dict[str, Any]:
    if op_type != "Put":
        key: dict[str, Any] = op["Key"]
        return key
    attrs = op["Item"]
    key = {table.hash_key_attr: attrs[table.hash_key_attr]}
    if table.range_key_attr is not None:
        key[table.range_key_attr] = attrs[table.range_key_attr]
    return key


def _save(backend: Any, transact_items: list[dict[str, Any]]) -> list[_Saved]:
    saved: list[_Saved] = []
    for entry in transact_items:
        try:
            op_type, op = next(iter(entry.items()))
            table = backend.tables[op["TableName"]]
            hash_key, range_key = backend.get_keys_value(table, _key_of(table, op_type, op))
            current = table.get_item(hash_key, range_key)
        except (DynamodbException, KeyError, StopIteration, TypeError, AttributeError):
            # An item moto refuses before it writes it (no such table, a malformed key): nothing to undo.
            continue
        shard = table.stream_shard
        records = len(shard.items) if shard is not None else None
        saved.append(_Saved(table, hash_key, range_key, copy.deepcopy(current), records))
    return saved


def patch() -> None:
    """Install the constant-time undo into moto's DynamoDB backend (idempotent)."""
    from moto.dynamodb import models
    from moto.dynamodb.models.table import Table

    backend_type = models.DynamoDBBackend
    original = backend_type.transact_write_items
    if getattr(original, _PATCHED, False):
        return
    models.copy = _TablesNotCopied(Table)  # type: ignore[assignment,attr-defined]

    def transact_write_items(self: Any, transact_items: list[dict[str, Any]]) -> None:
        saved = _save(self, transact_items)
        try:
            original(self, transact_items)
        except BaseException:
            for item in reversed(saved):  # the first copy of an item named twice wins
                item.restore()
            raise

    setattr(transact_write_items, _PATCHED, True)
    backend_type.transact_write_items = transact_write_items  # type: ignore[method-assign]
