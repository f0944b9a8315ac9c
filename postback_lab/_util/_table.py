"""Tables for people: numbers with thousands separators, one time format, text left and
numbers right, cut to fit the terminal (the widest text columns give way first)."""

from __future__ import annotations

import shutil
from collections.abc import Collection
from datetime import datetime
from typing import Any

import polars as pl

TIME_FORMAT = "%Y-%m-%d %H:%M:%S"  # UTC everywhere a person reads a time
MIN_TEXT = 8
KEEP_TEXT = 24  # text is cut to this before columns are left out


def cell(value: Any) -> str:
    """One value as a person reads it: ``1,772``, ``4.24``, ``2026-11-23 09:30:59``."""
    if value is None:
        return ""
    if isinstance(value, bool):
        return "yes" if value else "no"
    if isinstance(value, int):
        return f"{value:,}"
    if isinstance(value, float):
        return f"{value:,.0f}" if abs(value) >= 100 else f"{value:,.2f}".rstrip("0").rstrip(".")
    if isinstance(value, datetime):
        return value.strftime(TIME_FORMAT)
    return " ".join(str(value).split())  # one line: newlines and runs of blanks as one space


def shorten(text: str, width: int) -> str:
    """``text`` cut to ``width`` characters, ending in … when cut."""
    return text if len(text) <= width else text[: max(width - 1, 0)] + "…"


def terminal_width(default: int = 100) -> int:
    """Columns of the terminal (``COLUMNS`` wins; ``default`` when not a terminal)."""
    return shutil.get_terminal_size((default, 24)).columns


def text_table(
    frame: pl.DataFrame,
    *,
    width: int | None = None,
    right: Collection[str] = (),
    gap: int = 2,
) -> str:
    """``frame`` as aligned text no wider than ``width`` (the terminal's by default).

    Numeric and time columns (and those named in ``right``: numbers already formatted as
    text) are right-aligned, text left-aligned. Too wide, the widest text columns are cut
    with … (not below their header or ``KEEP_TEXT``), then the last columns are left out,
    and a last line names them."""
    width = terminal_width() if width is None else width
    right_of = [
        dt.is_numeric() or dt.is_temporal() or name in right for name, dt in frame.schema.items()
    ]
    body = [[cell(v) for v in row] for row in frame.iter_rows()]
    heads = list(frame.columns)
    widths = [max([len(h), *(len(r[i]) for r in body)]) for i, h in enumerate(heads)] or [0]

    def total(ws: list[int]) -> int:
        return sum(ws) + gap * (len(ws) - 1)

    # the widest text column gives way first, never below its header (or MIN_TEXT)
    floor = [max(MIN_TEXT, len(h), min(w, KEEP_TEXT)) for h, w in zip(heads, widths, strict=True)]
    while total(widths) > width:
        text_cols = [i for i, r in enumerate(right_of) if not r and widths[i] > floor[i]]
        if not text_cols:
            break
        i = max(text_cols, key=lambda j: widths[j])
        widths[i] = max(floor[i], widths[i] - (total(widths) - width))
    shown = len(heads)
    while shown > 1 and total(widths[:shown]) > width:
        shown -= 1

    def line(values: list[str]) -> str:
        parts = []
        for i in range(shown):
            v = shorten(values[i], widths[i])
            parts.append(v.rjust(widths[i]) if right_of[i] else v.ljust(widths[i]))
        return (" " * gap).join(parts).rstrip()

    out = [line(heads), (" " * gap).join("─" * widths[i] for i in range(shown))]
    out += [line(r) for r in body]
    if shown < len(heads):
        hidden = ", ".join(heads[shown:])
        out.append(f"({len(heads) - shown} more columns not shown: {hidden})")
    return "\n".join(out)
