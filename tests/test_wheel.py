"""The package works installed: build the wheel, install it into a fresh venv without any
index (the test venv's dependencies are made visible to it by a ``.pth`` file), and run
``postback-lab demo`` and ``postback-lab sample`` from there, away from the checkout."""

from __future__ import annotations

import os
import shutil
import site
import subprocess
import sys
import zipfile
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
SAMPLE_FILES = ("events.csv", "postbacks.yaml", "platform_log.csv")


def run(*cmd: str | Path, cwd: Path, env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [str(c) for c in cmd], capture_output=True, text=True, cwd=cwd, env=env, timeout=240
    )


@pytest.fixture(scope="module")
def installed(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path, dict[str, str]]:
    """(wheel, venv, environment): the wheel built from a copy of the sources and installed
    into a new venv that sees the test venv's packages but not the editable checkout."""
    tmp = tmp_path_factory.mktemp("wheel")
    src = tmp / "src"
    src.mkdir()
    for name in ("pyproject.toml", "README.md"):
        shutil.copy2(ROOT / name, src / name)
    # a copy, so no stale build/ folder of the checkout can leak into the wheel
    shutil.copytree(
        ROOT / "postback_lab", src / "postback_lab", ignore=shutil.ignore_patterns("__pycache__")
    )
    env = {k: v for k, v in os.environ.items() if not k.startswith(("PYTHON", "VIRTUAL_ENV"))}
    env["PIP_NO_INDEX"] = "1"  # nothing may be downloaded
    env["PIP_DISABLE_PIP_VERSION_CHECK"] = "1"
    pip = [sys.executable, "-m", "pip"]
    built = run(
        *pip,
        "wheel",
        "--no-deps",
        "--no-build-isolation",
        "-q",
        "-w",
        tmp / "dist",
        src,
        cwd=tmp,
        env=env,
    )
    assert built.returncode == 0, built.stderr
    (wheel,) = (tmp / "dist").glob("postback_lab-*.whl")

    venv = tmp / "venv"
    made = run(sys.executable, "-m", "venv", "--without-pip", venv, cwd=tmp, env=env)
    assert made.returncode == 0, made.stderr
    python = venv / "bin" / "python"
    purelib = run(
        python, "-c", "import sysconfig; print(sysconfig.get_path('purelib'))", cwd=tmp, env=env
    ).stdout.strip()
    # the dependencies come from the test venv; its .pth files (the editable install of the
    # checkout among them) are not processed for a path added this way
    Path(purelib, "test-venv-deps.pth").write_text(
        "\n".join(site.getsitepackages()) + "\n", encoding="utf-8"
    )
    got = run(*pip, "--python", python, "install", "--no-deps", "-q", wheel, cwd=tmp, env=env)
    assert got.returncode == 0, got.stderr
    return wheel, venv, env


def test_the_wheel_ships_the_sample_data_templates_and_chart_scripts(installed) -> None:
    wheel, _, _ = installed
    names = set(zipfile.ZipFile(wheel).namelist())
    for name in SAMPLE_FILES:
        assert f"postback_lab/_data/{name}" in names
    assert "postback_lab/_util/templates/report.html.j2" in names
    # the chart scripts and their licences: charts draw with no network and no vl-convert
    assert {
        "postback_lab/auditing/_js/vega-embed.js",
        "postback_lab/auditing/_js/LICENSE.txt",
    } <= names


def test_the_installed_package_is_imported_not_the_checkout(installed, tmp_path) -> None:
    _, venv, env = installed
    out = run(
        venv / "bin" / "python",
        "-c",
        "import postback_lab, postback_lab.sample as s; print(postback_lab.__file__); "
        "print(sorted(p.name for p in s.data_dir().iterdir()))",
        cwd=tmp_path,
        env=env,
    )
    assert out.returncode == 0, out.stderr
    where, files = out.stdout.splitlines()
    assert Path(where).is_relative_to(venv), where
    assert not Path(where).is_relative_to(ROOT)
    assert files == str(sorted(SAMPLE_FILES))


def test_demo_runs_from_the_installed_wheel(installed, tmp_path) -> None:
    _, venv, env = installed
    out = run(
        venv / "bin" / "postback-lab", "demo", "--output", tmp_path / "demo", cwd=tmp_path, env=env
    )
    assert out.returncode == 0, out.stderr
    lines = out.stdout.splitlines()
    first = next(line for line in lines if line.startswith("== 1. "))
    data = Path(first.removeprefix("== 1. Sample events from "))
    assert data.name == "events.csv" and data.is_relative_to(venv), first
    assert "== 5. Run it again: nothing is sent twice" in lines
    assert any(line.startswith("receiver got ") for line in lines)
    assert (tmp_path / "demo" / "audit_chart.html").exists()


def test_sample_writes_the_three_files_from_the_installed_wheel(installed, tmp_path) -> None:
    _, venv, env = installed
    out = run(
        venv / "bin" / "postback-lab", "sample", "-o", "s", "--rows", "200", cwd=tmp_path, env=env
    )
    assert out.returncode == 0, out.stderr
    assert out.stdout.splitlines() == [
        "events: s/events.csv",
        "rules: s/postbacks.yaml",
        "platform_log: s/platform_log.csv",
    ]
    for name in SAMPLE_FILES:
        assert (tmp_path / "s" / name).stat().st_size > 0
