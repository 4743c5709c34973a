"""The seam that chooses a store: the default built lazily and once, a test's choice, and back."""

from __future__ import annotations

import threading

import pytest

from chalicelib.platform.seam import Seam

pytestmark = pytest.mark.unit


def test_the_default_is_built_at_first_use_and_only_once_even_by_racing_threads() -> None:
    built: list[object] = []

    def build() -> object:
        built.append(object())
        return built[-1]

    seam = Seam(build)
    assert built == []  # nothing at construction (a module's import)
    seen: list[object] = []
    threads = [threading.Thread(target=lambda: seen.append(seam.current())) for _ in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert len(built) == 1 and seen == [built[0]] * 8


def test_a_configured_implementation_wins_until_none_brings_back_a_fresh_default() -> None:
    seam: Seam[list[str]] = Seam(list)
    default = seam.current()
    mine = ["memory"]
    seam.configure(mine)
    assert seam.current() is mine
    seam.configure(None)
    assert seam.current() is not mine and seam.current() is not default and seam.current() == []
