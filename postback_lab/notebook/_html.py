"""Small HTML views for ``_repr_html_``, rendered from Jinja2 templates (autoescaped).

Tables are capped so a million-row object never produces a million-row page.
"""

from __future__ import annotations

from functools import cache
from typing import Any

import jinja2
import polars as pl

MAX_ROWS = 20


@cache
def _env() -> jinja2.Environment:
    return jinja2.Environment(
        loader=jinja2.PackageLoader("postback_lab.notebook", "templates"),
        autoescape=True,
        trim_blocks=True,
        lstrip_blocks=True,
    )


def table(frame: pl.DataFrame, max_rows: int = MAX_ROWS) -> dict[str, Any]:
    """A frame as template data: columns, at most ``max_rows`` rows of text, hidden count."""
    head = frame.head(max_rows)
    rows = [["" if v is None else _fmt(v) for v in row] for row in head.iter_rows()]
    return {"columns": frame.columns, "rows": rows, "hidden": frame.height - head.height}


def _fmt(v: Any) -> str:
    if isinstance(v, float):
        return f"{v:,.4g}" if abs(v) < 1 else f"{v:,.2f}".rstrip("0").rstrip(".")
    if isinstance(v, int):
        return f"{v:,}"
    text = str(v)
    return text if len(text) <= 120 else text[:117] + "…"


def render(template: str, *, tables: list[tuple[str, pl.DataFrame]] = (), **data: Any) -> str:  # type: ignore[assignment]
    return (
        _env()
        .get_template(template)
        .render(tables=[(title, table(f)) for title, f in tables], **data)
    )
