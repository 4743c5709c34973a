"""A test's settings end with it: the next test in the same process reads the environment's.

The settings are cached per process (`get_settings`). A test that set a variable with monkeypatch
and cleared the cache before monkeypatch put the variable back left its values cached for every
later test of its xdist worker: one such test sent a worker's calls to a prefix with no tables.
Run as an inner pytest session, in a fixed order, with the project's conftest as a plugin.
"""

from __future__ import annotations

import os
from pathlib import Path

import pytest
from helpers import inner_pytest

ROOT = Path(__file__).resolve().parents[2]

INNER = """
import pytest

from chalicelib.platform.config import get_settings

pytestmark = pytest.mark.unit


def test_1_sets_a_prefix_and_reads_it(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("RESOURCE_PREFIX", "left-by-a-test")
    get_settings.cache_clear()
    assert get_settings().tasks_table == "left-by-a-test-tasks"


def test_2_reads_the_environment_again() -> None:
    assert get_settings().tasks_table != "left-by-a-test-tasks"
"""


@pytest.mark.unit
def test_settings_set_by_a_test_are_not_kept_for_the_next(tmp_path: Path) -> None:
    (tmp_path / "test_inner.py").write_text(INNER)
    # The project's conftest as a plugin (its autouse fixtures), importable as `conftest`.
    path = {"PYTHONPATH": os.pathsep.join([str(ROOT), str(ROOT / "tests")])}
    run = inner_pytest(tmp_path, "-p", "conftest", "-p", "no:randomly", "-q", env=path)
    assert run.returncode == 0, run.stdout[-3000:] + run.stderr[-2000:]
    assert "2 passed" in run.stdout, run.stdout
