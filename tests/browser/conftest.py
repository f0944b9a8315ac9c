"""Session fixtures of the browser suite: one JupyterLab, one headless Chromium. Skipped,
with the reason, when Selenium, JupyterLab or Debian's chromium / chromedriver are
missing (``make test`` installs them when apt is available)."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from ._lab import CHROMIUM, DRIVER, Lab, chromium, find

REPO = Path(__file__).resolve().parents[2]
NOTEBOOKS = REPO / "notebooks"
BUILD = REPO / "build" / "browser"


def _needs() -> tuple[str, str]:
    pytest.importorskip(
        "selenium", reason="selenium is in the test extra: pip install -e '.[test]'"
    )
    pytest.importorskip("jupyterlab", reason="jupyterlab is in the test extra")
    chrome, driver = find(CHROMIUM, "chromium"), find(DRIVER, "chromedriver")
    if chrome is None or driver is None:
        pytest.skip(
            "Chromium or chromedriver not found: 'make test' installs Debian's chromium and "
            "chromium-driver when apt is available (apt-get install chromium chromium-driver)"
        )
    return chrome, driver


@pytest.fixture(scope="session")
def shots() -> Path:
    """build/browser/, emptied once per session: the screenshots to look at."""
    shutil.rmtree(BUILD, ignore_errors=True)
    BUILD.mkdir(parents=True)
    return BUILD


@pytest.fixture(scope="session")
def browser():
    chrome, driver = _needs()
    b = chromium(chrome, driver)
    try:
        yield b
    finally:
        b.quit()


@pytest.fixture(scope="session")
def lab(tmp_path_factory, browser):
    """JupyterLab serving a copy of notebooks/ (a run never saves into the repository)."""
    root = tmp_path_factory.mktemp("lab-root")
    for nb in NOTEBOOKS.glob("*.ipynb"):
        shutil.copy(nb, root / nb.name)
    server = Lab(root, tmp_path_factory.mktemp("lab-home")).start()
    try:
        yield server
    finally:
        server.stop()
