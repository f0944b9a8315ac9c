"""Each notebook run in JupyterLab by headless Chromium, as an analyst would: no error
output, every chart drawn as SVG with no network ("Error loading script" never shows),
the explorer answering a filter change with a new KPI line, and a screenshot of every
cell under build/browser/<notebook>/."""

from __future__ import annotations

import time
from pathlib import Path

import pytest

from ._lab import CELLS, CHARTS, MODEL, READY, RUN, error_outputs, wait_for
from .conftest import NOTEBOOKS

NAMES = sorted(p.name for p in NOTEBOOKS.glob("*.ipynb"))

CLOSE = """
const done = arguments[0], w = window.jupyterapp.shell.currentWidget;
w.sessionContext.shutdown().then(() => { w.context.model.dirty = false; w.close(); done(true); },
                                 err => done(String(err)));
"""


def _run(browser, command: str, index: int) -> None:
    out = browser.execute_async_script(RUN, command, index)
    assert out.get("error") is None, out


def _screenshots(browser, folder: Path) -> int:
    folder.mkdir(parents=True, exist_ok=True)
    cells = browser.execute_script(CELLS)
    for i, cell in enumerate(cells):
        browser.execute_script("arguments[0].scrollIntoView({block: 'start'})", cell)
        time.sleep(0.2)
        cell.screenshot(str(folder / f"cell{i:02d}.png"))
    return len(cells)


def _drawn(browser, scope: str, timeout: float = 60) -> dict[str, int]:
    """Wait until every chart under ``scope`` has its SVG (or time out); the counts."""
    deadline = time.monotonic() + timeout
    while True:
        seen = browser.execute_script(CHARTS, scope)
        if seen["charts"] == seen["drawn"] or time.monotonic() > deadline:
            return seen
        time.sleep(0.25)


def _explorer(browser, folder: Path) -> tuple[str, str]:
    """Pick the first rule in the explorer's rule filter; the KPI line before and after."""
    from selenium.webdriver.common.by import By
    from selenium.webdriver.support.ui import Select

    notebook = browser.execute_script("return window.jupyterapp.shell.currentWidget.node")
    kpi = notebook.find_element(By.CSS_SELECTOR, ".pbl-explorer .pbl-kpi")
    before = kpi.text
    select = notebook.find_element(By.CSS_SELECTOR, ".pbl-explorer .pbl-filter-rule select")
    browser.execute_script("arguments[0].scrollIntoView({block: 'start'})", select)
    Select(select).select_by_index(0)
    deadline = time.monotonic() + 30
    while kpi.text == before and time.monotonic() < deadline:
        time.sleep(0.2)
    seen = _drawn(browser, ".pbl-explorer")
    assert seen["charts"] >= 1 and seen["drawn"] == seen["charts"], seen
    explorer = notebook.find_element(By.CSS_SELECTOR, ".pbl-explorer")
    folder.mkdir(parents=True, exist_ok=True)
    explorer.screenshot(str(folder / "explorer.png"))
    return before, kpi.text


def _docs_screenshot(browser, path: Path) -> None:
    """The output of the first chart cell, for the docs (``make screenshots`` copies it)."""
    output = browser.execute_script(
        "const c = window.jupyterapp.shell.currentWidget.node.querySelector('.pbl-chart');"
        "return c && c.closest('.jp-OutputArea-output');"
    )
    assert output is not None
    path.parent.mkdir(parents=True, exist_ok=True)
    browser.execute_script("arguments[0].scrollIntoView({block: 'start'})", output)
    time.sleep(0.2)
    output.screenshot(str(path))


@pytest.mark.parametrize("name", NAMES, ids=lambda n: n.removesuffix(".ipynb"))
def test_notebook_runs_in_jupyterlab(name, lab, browser, shots):
    browser.get(f"{lab.url}/lab/tree/{name}?token={lab.token}")
    assert wait_for(browser, READY, name, timeout=120), f"{name} did not open with a kernel"
    cells = browser.execute_script(
        "return window.jupyterapp.shell.currentWidget.content.widgets.length"
    )
    # Run All, as an analyst would: the last cell closes the log and stops the receiver;
    # the explorer must still answer a filter click afterwards
    _run(browser, "notebook:run-all-cells", 0)
    seen = _drawn(browser, ".jp-Cell")
    folder = shots / name.removesuffix(".ipynb")
    if browser.execute_script(
        "return !!window.jupyterapp.shell.currentWidget.node.querySelector('.pbl-explorer')"
    ):
        before, after = _explorer(browser, folder)
        assert after != before, f"the KPI line did not change: {before!r}"
        assert "cannot read the log" not in after
    model = browser.execute_script(MODEL)
    assert error_outputs(model) == []
    assert _screenshots(browser, folder) == cells
    text = browser.execute_script("return window.jupyterapp.shell.currentWidget.node.innerText")
    assert "Error loading script" not in text
    assert seen["drawn"] == seen["charts"], f"charts not drawn: {seen}"
    if name.startswith("03_"):
        assert seen["charts"] >= 2, seen  # the audit chart and the explorer's
        _docs_screenshot(browser, shots / "docs" / "audit_chart.png")
    assert browser.execute_async_script(CLOSE) is True
