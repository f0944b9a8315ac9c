"""The documentation site at 1400 px: no code or output block, table or the home page's
diagram is cut off behind a sideways scroll (outputs wrap their long lines)."""

from __future__ import annotations

import functools
import http.server
import os
import socketserver
import subprocess
import sys
import threading
import time

from .conftest import REPO

PAGES = (
    "index.html",
    "getting-started/index.html",
    "cli/index.html",
    "recipes/audit-a-partner/index.html",
)
CLIPPED = """
return [...document.querySelectorAll('pre code, .md-typeset__table')]
  .filter(e => e.scrollWidth > e.clientWidth + 1)
  .map(e => e.innerText.slice(0, 80));
"""


def test_docs_show_code_whole_at_1400_px(tmp_path, browser, shots):
    site = tmp_path / "site"
    mkdocs = [
        sys.executable,
        "-m",
        "mkdocs",
        "build",
        "--strict",
        "--quiet",
        "--site-dir",
        str(site),
    ]
    env = {**os.environ, "NO_MKDOCS_2_WARNING": "1"}
    subprocess.run(mkdocs, cwd=REPO, env=env, check=True, timeout=300)
    handler = functools.partial(http.server.SimpleHTTPRequestHandler, directory=str(site))
    handler.log_message = lambda *a: None  # type: ignore[method-assign]
    with socketserver.TCPServer(("127.0.0.1", 0), handler) as server:
        threading.Thread(target=server.serve_forever, daemon=True).start()
        size = browser.get_window_size()
        browser.set_window_size(1400, 1000)
        try:
            clipped = {}
            for page in PAGES:
                browser.get(f"http://127.0.0.1:{server.server_address[1]}/{page}")
                time.sleep(0.5)
                clipped[page] = browser.execute_script(CLIPPED)
                if page == "index.html":
                    browser.save_screenshot(str(shots / "docs_home_1400.png"))
        finally:
            browser.set_window_size(size["width"], size["height"])
            server.shutdown()
    assert clipped == {page: [] for page in PAGES}
