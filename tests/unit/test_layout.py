"""Every test file has its tier (docs/LOCAL.md, "Tests and the emulator"): a file at the top of tests/ would run with
every endpoint fixture at hand and no one would know which kind it is."""

from __future__ import annotations

from pathlib import Path

TESTS = Path(__file__).resolve().parents[1]
TIERS = {"unit", "functional", "integration", "tooling", "deployed"}


def test_every_test_file_is_in_a_tier() -> None:
    loose = sorted(path.name for path in TESTS.glob("test_*.py"))
    assert loose == [], f"move these into tests/<tier>/ with git mv: {loose}"
    folders = {path.parent.relative_to(TESTS).parts[0] for path in TESTS.rglob("test_*.py")}
    assert folders <= TIERS, folders - TIERS
