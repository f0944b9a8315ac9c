"""The one HTML helper behind every ``_repr_html_``: Jinja2 templates (autoescaped) with
tables capped so a million-row object never produces a million-row page."""

from __future__ import annotations

import re
from collections.abc import Sequence
from functools import cache
from typing import Any

import jinja2
import polars as pl

MAX_ROWS = 20


@cache
def _env() -> jinja2.Environment:
    return jinja2.Environment(
        loader=jinja2.PackageLoader("postback_lab._util", "templates"),
        autoescape=True,
        trim_blocks=True,
        lstrip_blocks=True,
    )


_PERCENT = re.compile(r"^[-+]?[\d,.]+%( \([\d.,–-]+\))?$")  # 91.5% · 91.5% (89.9–93.4)


def table(frame: pl.DataFrame, max_rows: int = MAX_ROWS) -> dict[str, Any]:
    """A frame as template data: columns, at most ``max_rows`` rows of text, hidden count,
    and each column's alignment (numbers, times and percentages right, text left)."""
    head = frame.head(max_rows)
    rows = [["" if v is None else _fmt(v) for v in row] for row in head.iter_rows()]
    align = []
    for i, dt in enumerate(frame.dtypes):
        shown = [r[i] for r in rows if r[i]]
        numeric = dt.is_numeric() or dt.is_temporal()
        numeric = numeric or (bool(shown) and all(_PERCENT.match(v) for v in shown))
        align.append("right" if numeric else "left")
    return {
        "columns": frame.columns,
        "rows": rows,
        "hidden": frame.height - head.height,
        "align": align,
    }


def _fmt(v: Any) -> str:
    if isinstance(v, float):
        return f"{v:,.4g}" if abs(v) < 1 else f"{v:,.2f}".rstrip("0").rstrip(".")
    if isinstance(v, int):
        return f"{v:,}"
    text = str(v)
    limit = 2_000 if text.startswith(("http://", "https://")) else 120  # URLs stay whole
    return text if len(text) <= limit else text[: limit - 3] + "…"


def render(
    title: str,
    summary: str,
    tables: Sequence[tuple[str, pl.DataFrame]] = (),
    *,
    quarantined: int = 0,
    lines: Sequence[str] = (),
) -> str:
    """A report block: a title, a one-line summary, then each (name, frame) as a
    collapsible table (the first open); ``quarantined`` adds a warning line and each of
    ``lines`` (notes, warnings) is a paragraph of its own under the summary."""
    return (
        _env()
        .get_template("report.html.j2")
        .render(
            title=title,
            summary=summary,
            tables=[(name, table(f)) for name, f in tables],
            quarantined=quarantined,
            lines=lines,
        )
    )
