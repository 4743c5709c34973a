"""The JSON answers of the task records' query side, as types.

`chalicelib/api/responses.py` describes the same shapes for the published contract;
tests/unit/test_answer_shapes.py keeps the two to the same keys.
"""

from __future__ import annotations

from typing import Any, NotRequired, TypedDict


class TaskRecord(TypedDict):
    id: str
    name: str
    queue: str | None
    status: str
    owner: str | None
    book_id: str | None
    args: Any
    kwargs: Any
    result: Any
    error: str | None
    traceback: str | None
    attempts: int
    retries: int
    created_at: str | None
    started_at: str | None
    finished_at: str | None
    updated_at: str | None
    invocation: str | None
    parent_id: str | None
    children: list[str]
    children_sent: int
    rerun_of: str | None
    reruns: list[str]
    mail: NotRequired[dict[str, Any] | None]  # a fan-out task's mail counts, from `get_record` only


class TaskPage(TypedDict):
    items: list[TaskRecord]
    next_cursor: str | None
