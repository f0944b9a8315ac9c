"""The skip policy of tests/conftest.py: a test that cannot run here skips with its reason,
except under ``POSTBACK_LAB_REQUIRE_ALL=1`` (set by .ci/run), where the skip fails."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

CONFTEST = Path(__file__).with_name("conftest.py")
PROBES = {
    # skipped when collected, like tests/scale/test_delta.py without deltalake
    "test_extra_probe.py": (
        "import pytest\n"
        "pytest.importorskip('no_such_extra_xyz', reason='the [nope] extra is not installed')\n"
        "def test_uses_the_extra(): pass\n"
    ),
    # skipped by a fixture, like the browser tests without Chromium
    "test_browser_probe.py": (
        "import pytest\n"
        "@pytest.fixture\n"
        "def browser(): pytest.skip('Chromium or chromedriver not found')\n"
        "def test_draws(browser): pass\n"
        "def test_plain(): pass\n"
    ),
}


def _run(tmp_path: Path, require_all: bool, *probes: str) -> subprocess.CompletedProcess[str]:
    shutil.copy(CONFTEST, tmp_path / "conftest.py")
    for name in probes or PROBES:
        (tmp_path / name).write_text(PROBES[name], encoding="utf-8")
    env = {k: v for k, v in os.environ.items() if k != "POSTBACK_LAB_REQUIRE_ALL"}
    if require_all:
        env["POSTBACK_LAB_REQUIRE_ALL"] = "1"
    return subprocess.run(
        [sys.executable, "-m", "pytest", "-rA", "-p", "no:cacheprovider", str(tmp_path)],
        cwd=tmp_path,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )


def test_without_the_flag_a_test_that_cannot_run_skips_with_its_reason(tmp_path):
    out = _run(tmp_path, require_all=False)
    assert out.returncode == 0, out.stdout
    assert "1 passed, 2 skipped" in out.stdout
    assert "the [nope] extra is not installed" in out.stdout
    assert "Chromium or chromedriver not found" in out.stdout


def test_with_the_flag_a_skipped_test_fails_naming_why(tmp_path):
    out = _run(tmp_path, True, "test_browser_probe.py")
    assert out.returncode == 1, out.stdout
    assert "1 passed, 1 error" in out.stdout  # skipped in its fixture: an error in setup
    assert (
        "skipped (Skipped: Chromium or chromedriver not found), but "
        "POSTBACK_LAB_REQUIRE_ALL=1 requires every test to run"
    ) in out.stdout


def test_with_the_flag_a_module_skipped_when_collected_stops_the_run(tmp_path):
    out = _run(tmp_path, True, "test_extra_probe.py")
    assert out.returncode == 2, out.stdout  # a collection error: pytest runs nothing
    assert "1 error" in out.stdout
    assert (
        "skipped (Skipped: the [nope] extra is not installed), but "
        "POSTBACK_LAB_REQUIRE_ALL=1 requires every test to run"
    ) in out.stdout


def test_ci_sets_the_flag():
    text = (Path(__file__).resolve().parent.parent / ".ci" / "run").read_text(encoding="utf-8")
    assert "POSTBACK_LAB_REQUIRE_ALL=1 make test" in text
