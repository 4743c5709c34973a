"""Which book a task is about, so a book's page can list its tasks (the task table's book index)."""

from __future__ import annotations

from typing import Any

# Tasks of these families take the book id as their first argument (or as `book_id=`).
BOOK_TASK_PREFIXES = ("covers.", "books.", "mail.")
MAX_BOOK_ID = 64


def book_id_of(task: str, args: list[Any], kwargs: dict[str, Any]) -> str | None:
    """The id of the book task `task` works on, or None."""
    value = kwargs.get("book_id")
    if value is None and args and task.startswith(BOOK_TASK_PREFIXES):
        value = args[0]
    return value if isinstance(value, str) and 0 < len(value) <= MAX_BOOK_ID else None
