"""The code blocks of the documentation pages (``docs/**/*.md`` and ``README.md``).

A fenced block's language says how it is checked: ``python`` blocks of a page run in order
in one namespace (top-level ``await`` allowed, as in Jupyter), ``sh`` blocks of a page run
in order in one bash script, both in a fresh folder. An HTML comment on the line before a
block changes that (it is invisible on the site):

- ``<!-- test: skip -->``: not run (installs, long benchmarks, commands that never end);
- ``<!-- test: receiver -->``: an ``sh`` block that starts ``postback-lab receiver``: the
  test starts a Receiver itself instead, and port 8765 in the page's shell blocks becomes
  that receiver's free port;
- ``<!-- test: output -->``: a ``text`` block showing what the block before it prints:
  its lines must appear in that order in the output (``...`` matches any text).
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
DOCS = ROOT / "docs"
PAGES = [*sorted(DOCS.rglob("*.md")), ROOT / "README.md"]

_FENCE = re.compile(r"^(?P<indent> *)(?P<ticks>`{3,})(?P<lang>[\w-]*)[^\n]*$")
_MARK = re.compile(r"^\s*<!-- test: (?P<mark>[\w-]+) -->\s*$")


@dataclass(frozen=True)
class Block:
    """One fenced code block: its page, first line (1-based), language, text and marker."""

    page: Path
    line: int
    lang: str
    text: str
    mark: str | None

    @property
    def where(self) -> str:
        return f"{self.page.relative_to(ROOT)}:{self.line}"


def blocks(page: Path) -> list[Block]:
    """Every fenced block of ``page``, with the marker comment just above it, if any."""
    lines = page.read_text(encoding="utf-8").splitlines()
    out: list[Block] = []
    i = 0
    while i < len(lines):
        m = _FENCE.match(lines[i])
        if m is None:
            i += 1
            continue
        indent, ticks = len(m["indent"]), m["ticks"]
        start = i
        body: list[str] = []
        i += 1
        while i < len(lines) and lines[i].strip() != ticks:
            body.append(lines[i][indent:])
            i += 1
        prev = next((ln for ln in reversed(lines[:start]) if ln.strip()), "")
        mark = _MARK.match(prev)
        out.append(
            Block(
                page, start + 1, m["lang"], "\n".join(body) + "\n", mark["mark"] if mark else None
            )
        )
        i += 1
    return out


def expected_after(all_blocks: list[Block], block: Block) -> Block | None:
    """The ``<!-- test: output -->`` block that follows ``block`` directly, if any."""
    i = all_blocks.index(block)
    if i + 1 < len(all_blocks) and all_blocks[i + 1].mark == "output":
        return all_blocks[i + 1]
    return None


def missing_lines(expected: str, actual: str) -> list[str]:
    """The expected lines not found, in order, among the actual ones (``...`` is any text)."""
    want = [ln.rstrip() for ln in expected.splitlines() if ln.strip() and ln.strip() != "..."]
    have = [ln.rstrip() for ln in actual.splitlines()]
    pos = 0
    for n, line in enumerate(want):
        pattern = re.compile(".*".join(re.escape(p) for p in line.split("...")) + r"\Z")
        while pos < len(have) and not pattern.match(have[pos]):
            pos += 1
        if pos == len(have):
            return want[n:]
        pos += 1
    return []
