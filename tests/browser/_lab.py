"""A JupyterLab server on 127.0.0.1 with a token, and headless Chromium (Debian's chromium
and chromedriver, driven by Selenium) that opens notebooks in it, runs their cells and
takes screenshots. Nothing is downloaded: Chromium runs with a proxy that refuses every
connection except to 127.0.0.1, so a chart that needs a CDN shows its error."""

from __future__ import annotations

import json
import os
import secrets
import shutil
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path
from typing import Any

CHROMIUM = ("/usr/bin/chromium", "/usr/bin/chromium-browser", "/usr/bin/google-chrome")
DRIVER = ("/usr/bin/chromedriver", "/usr/lib/chromium/chromedriver")

# settings a person would otherwise click away: no news toast, every cell rendered
SETTINGS = {
    "@jupyterlab/apputils-extension/notification.jupyterlab-settings": {
        "fetchNews": "false",
        "checkForUpdates": False,
    },
    "@jupyterlab/notebook-extension/tracker.jupyterlab-settings": {"windowingMode": "none"},
}


def find(candidates: tuple[str, ...], name: str) -> str | None:
    """The first existing executable of ``candidates`` (or ``name`` on PATH)."""
    for c in candidates:
        if os.access(c, os.X_OK):
            return c
    return shutil.which(name)


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


class Lab:
    """``jupyter lab`` from this interpreter's environment, serving ``root``."""

    def __init__(self, root: Path, home: Path) -> None:
        self.root, self.home = root, home
        self.port = free_port()
        self.token = secrets.token_hex(16)
        self.proc: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def start(self, timeout: float = 120) -> Lab:
        settings = self.home / "settings"
        for rel, value in SETTINGS.items():
            p = settings / rel
            p.parent.mkdir(parents=True, exist_ok=True)
            p.write_text(json.dumps(value), encoding="utf-8")
        env = {
            **os.environ,
            "JUPYTERLAB_SETTINGS_DIR": str(settings),
            "JUPYTERLAB_WORKSPACES_DIR": str(self.home / "workspaces"),
            "JUPYTER_CONFIG_DIR": str(self.home / "config"),
            "JUPYTER_RUNTIME_DIR": str(self.home / "runtime"),
            "IPYTHONDIR": str(self.home / "ipython"),
            "PYTHONWARNINGS": "",  # the kernels' own warnings are not the tests'
        }
        self.log = open(self.home / "lab.log", "wb")  # noqa: SIM115 (closed in stop)
        self.proc = subprocess.Popen(
            [
                sys.executable,
                "-m",
                "jupyterlab",
                "--no-browser",
                "--ip=127.0.0.1",
                f"--port={self.port}",
                f"--IdentityProvider.token={self.token}",
                "--LabApp.expose_app_in_browser=True",
                "--LabApp.news_url=None",
                "--LabApp.extension_manager=readonly",
                f"--ServerApp.root_dir={self.root}",
                "--allow-root",
            ],
            stdout=self.log,
            stderr=subprocess.STDOUT,
            env=env,
            cwd=self.root,
        )
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError(f"jupyter lab exited: see {self.home / 'lab.log'}")
            try:
                with urllib.request.urlopen(f"{self.url}/api/status?token={self.token}", timeout=2):
                    return self
            except OSError:
                time.sleep(0.3)
        raise RuntimeError(f"jupyter lab did not answer in {timeout:.0f} s")

    def stop(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(20)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(10)
        self.log.close()


def chromium(chrome: str, driver: str, width: int = 1300, height: int = 1800) -> Any:
    """A headless Chromium session that reaches only 127.0.0.1."""
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service

    opts = webdriver.ChromeOptions()
    opts.binary_location = chrome
    for arg in (
        "--headless=new",
        "--no-sandbox",
        "--disable-gpu",
        "--disable-dev-shm-usage",
        f"--window-size={width},{height}",
        "--disable-background-networking",
        "--disable-component-update",
        "--disable-sync",
        "--no-first-run",
        "--disable-extensions",
        "--proxy-server=http://127.0.0.1:9",  # nothing listens there: no CDN, no internet
        "--proxy-bypass-list=127.0.0.1;localhost",
    ):
        opts.add_argument(arg)
    opts.set_capability("goog:loggingPrefs", {"browser": "ALL"})
    os.environ.setdefault("SE_OFFLINE", "true")  # Selenium Manager: never download a driver
    browser = webdriver.Chrome(options=opts, service=Service(executable_path=driver))
    browser.set_script_timeout(300)
    return browser


# -- JupyterLab through its app object (exposed by --LabApp.expose_app_in_browser) ---------
READY = """
const w = window.jupyterapp && window.jupyterapp.shell.currentWidget;
return !!(w && w.context && w.context.path === arguments[0] && w.sessionContext
    && w.sessionContext.session && w.sessionContext.session.kernel
    && w.sessionContext.session.kernel.connectionStatus === 'connected'
    && w.content.widgets.length > 0);
"""

RUN = """
const [command, index, done] = arguments;
const app = window.jupyterapp, w = app.shell.currentWidget;
w.content.activeCellIndex = index;
app.commands.execute(command).then(ok => done({ok: ok}), err => done({error: String(err)}));
"""

MODEL = "return window.jupyterapp.shell.currentWidget.model.toJSON();"

CELLS = "return window.jupyterapp.shell.currentWidget.content.widgets.map(c => c.node);"

# charts under a selector, within the open notebook only (closed ones may linger hidden)
CHARTS = """
const root = window.jupyterapp.shell.currentWidget.node;
const divs = [...root.querySelectorAll(arguments[0] + ' .pbl-chart')];
return {charts: divs.length, drawn: divs.filter(d => d.querySelector('svg.marks')).length};
"""


def wait_for(browser: Any, script: str, *args: Any, timeout: float = 60) -> Any:
    """Poll a script until it returns something truthy."""
    deadline = time.monotonic() + timeout
    while True:
        value = browser.execute_script(script, *args)
        if value or time.monotonic() > deadline:
            return value
        time.sleep(0.25)


def error_outputs(model: dict[str, Any]) -> list[str]:
    """``ename: evalue`` of every error output of a notebook model."""
    return [
        f"cell {i}: {o.get('ename')}: {o.get('evalue')}"
        for i, cell in enumerate(model["cells"])
        for o in cell.get("outputs", [])
        if o.get("output_type") == "error"
    ]
