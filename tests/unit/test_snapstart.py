"""SnapStart: the state init leaves behind is safe to copy into many environments.

Every environment restored from one snapshot starts from the same memory, so the runtime
hooks (`snapshot_restore_py`, the Lambda runtime's own module, installed here from PyPI)
must drop the clients and connections made at init and re-seed `random`.
"""

from __future__ import annotations

import random

import pytest
import snapshot_restore_py

from chalicelib.platform import aws, snapstart


@pytest.fixture
def registered() -> None:
    """The hooks registered as importing the app registers them (tests/functional/test_snapstart_app.py),
    whether or not a test of this process imported the app before."""
    if (snapstart.after_restore, (), {}) not in snapshot_restore_py.get_after_restore():
        snapstart.install()


@pytest.mark.unit
def test_after_restore_every_client_and_table_connection_is_made_anew(registered: None) -> None:
    from chalicelib.books.models import Book

    if (snapstart.after_restore, (), {}) not in snapshot_restore_py.get_after_restore():
        snapstart.install()  # importing the app does this; alone (`-m unit`, another order) the test does
    s3 = aws.client("s3")
    connection = Book._get_connection()
    assert aws.client("s3") is s3 and Book._get_connection() is connection  # cached while warm
    for func, args, kwargs in snapshot_restore_py.get_after_restore():  # as the runtime calls them
        func(*args, **kwargs)
    assert aws.client("s3") is not s3
    assert Book._get_connection() is not connection


@pytest.mark.unit
def test_before_snapshot_leaves_no_client_in_the_image() -> None:
    from chalicelib.books.models import Book

    s3 = aws.client("s3")
    Book._get_connection()
    snapstart.before_snapshot()
    assert Book._connection is None
    assert aws.client("s3") is not s3


@pytest.mark.unit
def test_two_environments_restored_from_one_snapshot_draw_different_numbers() -> None:
    random.seed(7)
    snapshot = random.getstate()  # what every restored copy starts from
    draws = []
    for _ in range(2):
        random.setstate(snapshot)
        snapstart.after_restore()
        draws.append([random.random() for _ in range(4)])
    assert draws[0] != draws[1]
    # Without the hook both copies would repeat the same sequence.
    random.setstate(snapshot)
    first = [random.random() for _ in range(4)]
    random.setstate(snapshot)
    assert first == [random.random() for _ in range(4)]
