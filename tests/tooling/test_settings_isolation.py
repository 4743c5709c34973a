"""A test's settings end with it: the next test in the same process reads the environment's.

The settings are cached per process (`get_settings`). A test that set a variable with monkeypatch
and cleared the cache before monkeypatch put the variable back left its values cached for every
later test of its xdist worker: one such test sent a worker's calls to a prefix with no tables.
Run as an inner pytest session, in a fixed order, with the project's conftest as a plugin.
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

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
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(ROOT), str(ROOT / "tests")])}
    env.pop("PYTEST_XDIST_WORKER", None)  # the inner session is not one of this run's workers
    options = ["-p", "conftest", "-p", "no:randomly", "-p", "no:cacheprovider", "-o", "addopts=", "-q"]
    run = subprocess.run(
        [sys.executable, "-m", "pytest", *options, "--rootdir", str(tmp_path), str(tmp_path)],
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
        cwd=tmp_path,
    )
    assert run.returncode == 0, run.stdout[-3000:] + run.stderr[-2000:]
    assert "2 passed" in run.stdout, run.stdout
