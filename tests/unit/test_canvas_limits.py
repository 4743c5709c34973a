"""A chord's limits, checked before anything is written: its member count and a member's inline result."""

from __future__ import annotations

import json
from typing import Any

import pytest

from chalicelib.tasks import canvas
from chalicelib.tasks.canvas import chord
from chalicelib.tasks.decorator import task


@task("tests.canvas_limits.member")
def _member(index: int) -> int:
    return index


@task("tests.canvas_limits.collect")
def _collect(results: list[dict[str, Any]]) -> int:
    return len(results)


def test_chord_refuses_more_members_than_its_limit() -> None:
    with pytest.raises(ValueError, match="at most 1000 members"):
        chord([_member.s(i) for i in range(canvas.MAX_CHORD_MEMBERS + 1)], _collect.s())


def test_a_large_member_result_is_kept_by_reference() -> None:
    big = {"blob": "x" * (canvas.MAX_INLINE_RESULT_BYTES + 1)}
    assert canvas._bounded(big, "t-1") == {"ref": "t-1", "truncated": True}
    assert canvas._bounded({"small": 1}, "t-1") == {"small": 1}
    assert json.dumps(canvas._bounded(None, "t-1")) == "null"
