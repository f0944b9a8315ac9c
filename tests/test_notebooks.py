"""Every notebook runs top to bottom, offline, against the bundled data."""

from __future__ import annotations

import json
from pathlib import Path

import nbformat
import pytest
from nbclient import NotebookClient

NOTEBOOKS = sorted((Path(__file__).resolve().parent.parent / "notebooks").glob("*.ipynb"))


def test_the_four_notebooks_exist():
    assert [p.stem for p in NOTEBOOKS] == [
        "01_quickstart",
        "02_backfill_missed_postbacks",
        "03_audit_delivery_failures",
        "04_what_if_rules",
    ]


#: what each notebook must print (the checks live here, not in the shipped notebooks)
EXPECT = {
    "01_quickstart": ("requests sent", "rendered and logged, 0 requests sent"),
    "02_backfill_missed_postbacks": (" 0 missed;", "second run sent 0 postbacks"),
    "04_what_if_rules": ("0 postbacks removed, ",),
}


def test_shipped_notebooks_carry_no_test_asserts():
    for path in NOTEBOOKS:
        nb = nbformat.read(path, as_version=4)
        code = "\n".join(c.source for c in nb.cells if c.cell_type == "code")
        assert "assert " not in code, path.name


@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda p: p.stem)
def test_notebook_executes(path, tmp_path):
    nb = nbformat.read(path, as_version=4)
    NotebookClient(
        nb, timeout=180, kernel_name="python3", resources={"metadata": {"path": str(tmp_path)}}
    ).execute()
    errors = [
        o
        for c in nb.cells
        if c.cell_type == "code"
        for o in c.get("outputs", [])
        if o.get("output_type") == "error"
    ]
    assert errors == []
    printed = "".join(
        "".join(o.get("text", ""))
        for c in nb.cells
        if c.cell_type == "code"
        for o in c.get("outputs", [])
    )
    for line in EXPECT.get(path.stem, ()):
        assert line in printed, f"{path.stem} did not print {line!r}:\n{printed}"
    drawn = [_draw(spec) for spec in _chart_specs(nb)]
    if path.stem == "03_audit_delivery_failures":
        assert len(drawn) >= 2  # the audit charts (by rule; by publisher and day), drawn
    assert all(drawn)


_EMBED = "__pblVegaEmbed(el, "


def _chart_specs(nb) -> list[dict]:
    """The Vega-Lite spec of every chart the notebook's outputs show (the inline renderer
    writes it into the HTML as the argument of the embed call)."""
    specs = []
    for c in nb.cells:
        for o in c.get("outputs", []):
            html = o.get("data", {}).get("text/html", "")
            html = "".join(html) if isinstance(html, list) else html
            start = html.find(_EMBED)
            while start >= 0:
                spec, _ = json.JSONDecoder().raw_decode(html, start + len(_EMBED))
                specs.append(spec)
                start = html.find(_EMBED, start + 1)
    return specs


def _draw(spec: dict) -> bool:
    """Draw a spec to SVG as the browser would (vl-convert, no network)."""
    import vl_convert

    svg = vl_convert.vegalite_to_svg(spec)
    return "<svg" in svg and "<path" in svg
