"""Pure logic behind the dashboard: which book a task is about, the age of the oldest dead letter."""

from __future__ import annotations

from typing import Any

import pytest

from chalicelib.ops.backlog import oldest_sent
from chalicelib.tasks.subjects import book_id_of

pytestmark = pytest.mark.unit  # pure logic: no AWS endpoint is started for these tests


@pytest.mark.parametrize(
    ("task", "args", "kwargs", "expected"),
    [
        ("covers.resize", ["b1", 2], {}, "b1"),
        ("books.notify_subscribers", ["b2"], {}, "b2"),
        ("mail.new_book", ["b3", "a@example.org"], {}, "b3"),
        ("reports.weekly", ["alice"], {}, None),
        ("reports.weekly", [], {"book_id": "b4"}, "b4"),
        ("covers.resize", [7, 2], {}, None),
        ("covers.resize", ["x" * 65], {}, None),
        ("covers.resize", [], {}, None),
    ],
)
def test_book_id_of_a_task(task: Any, args: Any, kwargs: Any, expected: Any) -> None:
    from chalicelib import app_tasks  # noqa: F401 - registers the application's tasks
    from chalicelib.tasks.registry import get_task, registered_tasks

    book_arg = task in registered_tasks() and get_task(task).book_arg  # declared: `@task(..., book_arg=True)`
    assert book_id_of(args, kwargs, book_arg) == expected


def test_oldest_sent_is_the_earliest_sent_timestamp() -> None:
    messages = [{"Attributes": {"SentTimestamp": "1000000"}}, {"Attributes": {"SentTimestamp": "990000"}}, {}]
    assert oldest_sent(messages, now=1000.0) == 10
    assert oldest_sent([], now=1000.0) is None
    assert oldest_sent([{"Attributes": {"SentTimestamp": "2000000"}}], now=1000.0) == 0  # clock skew: never negative
