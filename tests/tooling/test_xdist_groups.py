"""make test's parallel plan holds: a file marked `xdist_group` runs whole on one worker.

pytest 9.2 broke that silently (pytest-dev/pytest-xdist#1386): every costly module fixture (the
deployment, the zip) was then built once per worker that got a piece of its file.
"""

from __future__ import annotations

import re
from pathlib import Path

from helpers import inner_pytest

GROUPED = """
import pytest

pytestmark = pytest.mark.xdist_group("together")


def test_1() -> None: pass
def test_2() -> None: pass
def test_3() -> None: pass
def test_4() -> None: pass
"""
FREE = "\n".join(f"def test_free_{i}() -> None: pass" for i in range(8))


def test_a_grouped_file_runs_whole_on_one_worker(tmp_path: Path) -> None:
    (tmp_path / "test_grouped.py").write_text(GROUPED)
    (tmp_path / "test_free.py").write_text(FREE)
    # xdist alone: the other plugins (Schemathesis, Hypothesis, Playwright…) cost a second of CPU per process.
    only_xdist = {"PYTEST_DISABLE_PLUGIN_AUTOLOAD": "1"}
    run = inner_pytest(tmp_path, "-p", "xdist", "-n", "2", "--dist", "loadgroup", "-v", env=only_xdist)
    assert run.returncode == 0, run.stdout[-2000:] + run.stderr[-2000:]
    ran = re.findall(r"\[(gw\d+)\] .*PASSED \S*test_grouped\.py::(test_\d)(@together)?", run.stdout)
    assert sorted(name for _, name, _ in ran) == ["test_1", "test_2", "test_3", "test_4"], run.stdout
    assert all(group for _, _, group in ran), f"no @together suffix: the group was ignored\n{run.stdout}"
    assert len({worker for worker, _, _ in ran}) == 1, run.stdout
