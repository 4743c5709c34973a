"""SnapStart: the app, as Lambda imports it, registers its hooks with the runtime (the hooks
themselves: tests/unit/test_snapstart.py)."""

from __future__ import annotations

from typing import Any

import snapshot_restore_py

from chalicelib.platform import snapstart


def test_importing_the_app_registers_both_hooks_with_the_runtime(app_module: Any) -> None:
    assert (snapstart.before_snapshot, (), {}) in snapshot_restore_py.get_before_snapshot()
    assert (snapstart.after_restore, (), {}) in snapshot_restore_py.get_after_restore()
