"""Which book a task is about, so a book's page can list its tasks (the task table's book index)."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

MAX_BOOK_ID = 64


def book_id_of(args: Sequence[Any], kwargs: dict[str, Any], book_arg: bool) -> str | None:
    """The book id of a call: its `book_id=` keyword, else its first argument when the task
    declares `book_arg` (`@task(..., book_arg=True)`); None when it is not a plausible id."""
    value = kwargs.get("book_id")
    if value is None and args and book_arg:
        value = args[0]
    return value if isinstance(value, str) and 0 < len(value) <= MAX_BOOK_ID else None
