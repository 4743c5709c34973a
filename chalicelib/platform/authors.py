"""Author names as keys."""

from __future__ import annotations


def author_key(name: str) -> str:
    """The normalised form under which an author is indexed (case and spacing folded)."""
    return " ".join(name.casefold().split())
