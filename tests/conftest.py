"""Shared fixtures: small exact event files and rules written into tmp_path; and the skip
policy.

Browser, Spark and Delta tests skip, saying why, on a machine without Chromium, Java or
the extras (``make test`` on a laptop). ``.ci/run`` sets ``POSTBACK_LAB_REQUIRE_ALL=1``:
there every skip is a failure, so CI never passes with a part of the suite unrun."""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

REQUIRE_ALL = "POSTBACK_LAB_REQUIRE_ALL"


def _required(report: Any) -> None:
    """Turn a skip into a failure when every test must run (see the module docstring)."""
    if os.environ.get(REQUIRE_ALL) != "1" or not report.skipped or hasattr(report, "wasxfail"):
        return
    reason = report.longrepr[-1] if isinstance(report.longrepr, tuple) else report.longrepr
    report.outcome = "failed"
    report.longrepr = f"skipped ({reason}), but {REQUIRE_ALL}=1 requires every test to run"


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_makereport(item: pytest.Item, call: pytest.CallInfo[None]) -> Iterator[Any]:
    outcome = yield
    _required(outcome.get_result())


@pytest.hookimpl(hookwrapper=True)
def pytest_make_collect_report(collector: pytest.Collector) -> Iterator[Any]:
    outcome = yield
    _required(outcome.get_result())


@pytest.fixture
def write(tmp_path: Path):
    """write(name, text) -> path of a dedented file in tmp_path."""

    def _write(name: str, text: str) -> Path:
        p = tmp_path / name
        p.write_text(textwrap.dedent(text).lstrip("\n"), encoding="utf-8")
        return p

    return _write


@pytest.fixture
def run_cli():
    """run_cli(*args) -> the finished ``python -m postback_lab.cli ARGS`` process (a
    real process: exit code, stdout and stderr as a user sees them)."""

    def _run(*args: object, timeout: float = 120) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [sys.executable, "-m", "postback_lab.cli", *map(str, args)],
            capture_output=True,
            text=True,
            timeout=timeout,
        )

    return _run
