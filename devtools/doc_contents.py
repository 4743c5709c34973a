"""Contents lists of README.md and docs/*.md: `python -m devtools.doc_contents README.md docs/*.md`.

Rewrites the list between `<!-- toc -->` and `<!-- /toc -->` from the page's `##` and `###`
headings, with the anchors GitHub makes for them; tests/tooling/test_readme.py checks that every link
lands and every `##` section is listed, so run this after adding a section.
"""

from __future__ import annotations

import re
import sys
from pathlib import Path

_BLOCK = re.compile(r"<!-- toc -->.*?<!-- /toc -->", flags=re.S)


def slug(heading: str) -> str:
    """GitHub's anchor for a heading: lower case, punctuation dropped, spaces to hyphens."""
    return re.sub(r"[^\w\- ]", "", heading.strip().lower()).replace(" ", "-")


def headings(text: str) -> list[tuple[int, str]]:
    """(level, text) of every Markdown heading outside fenced code blocks."""
    found, fenced = [], False
    for line in text.splitlines():
        if line.startswith("```"):
            fenced = not fenced
        elif not fenced and (match := re.match(r"^(#{1,6}) (.+?)\s*#*$", line)):
            found.append((len(match.group(1)), match.group(2)))
    return found


def anchored(text: str) -> list[tuple[int, str, str]]:
    """(level, heading, anchor) in page order; a repeated heading gets -1, -2, … as on GitHub."""
    seen: dict[str, int] = {}
    out = []
    for level, heading in headings(text):
        base = slug(heading)
        out.append((level, heading, f"{base}-{seen[base]}" if base in seen else base))
        seen[base] = seen.get(base, 0) + 1
    return out


def contents(text: str) -> str:
    """The page with its contents list rebuilt (unchanged when it has no `<!-- toc -->` block)."""
    lines = [
        "  " * (level - 2) + f"- [{heading}](#{anchor})"
        for level, heading, anchor in anchored(text)
        if level in (2, 3) and heading != "Contents"
    ]
    block = "<!-- toc -->\n" + "\n".join(lines) + "\n<!-- /toc -->"
    return _BLOCK.sub(lambda _: block, text)


def main(argv: list[str] | None = None) -> None:
    for name in argv if argv is not None else sys.argv[1:]:
        path = Path(name)
        text = path.read_text(encoding="utf-8")
        if (rebuilt := contents(text)) != text:
            path.write_text(rebuilt, encoding="utf-8")
            print(f"{name}: contents rebuilt")


if __name__ == "__main__":
    main()
