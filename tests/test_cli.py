"""The command line: help, one-sentence errors with exit 2, plan, demo end to end."""

from __future__ import annotations

import subprocess
import sys

import polars as pl

CLI = [sys.executable, "-m", "postback_lab.cli"]


def run(*args: str, cwd=None) -> subprocess.CompletedProcess[str]:
    return subprocess.run([*CLI, *args], capture_output=True, text=True, cwd=cwd, timeout=120)


def test_help_lists_every_command():
    out = run("--help").stdout
    for cmd in ("demo", "plan", "send", "backfill", "audit", "import-log", "receiver"):
        assert cmd in out


def test_bad_input_is_one_sentence_exit_2(tmp_path):
    out = run("plan", str(tmp_path / "nope.csv"), "--rules", str(tmp_path / "r.yaml"))
    assert out.returncode == 2
    assert out.stderr == f"postback-lab: error: {tmp_path / 'r.yaml'}: no such rules file\n"
    assert "Traceback" not in out.stderr
    debug = run("--debug", "plan", str(tmp_path / "nope.csv"), "--rules", str(tmp_path / "r.yaml"))
    assert "Traceback" in debug.stderr


def test_plan_writes_parquet_and_explains(tmp_path):
    from postback_lab import sample

    paths = sample.write(tmp_path / "s", 300)
    out = run(
        "plan",
        str(paths["events"]),
        "--rules",
        str(paths["rules"]),
        "-o",
        str(tmp_path / "plan.parquet"),
        "--explain",
    )
    assert out.returncode == 0, out.stderr
    assert "postbacks to fire from 4 rules" in out.stdout and "excluded:" in out.stdout
    plan = pl.read_parquet(tmp_path / "plan.parquet")
    assert plan.columns[:12] == [
        "dispatch_id",
        "rule",
        "transaction_id",
        "event_type",
        "status",
        "offer_id",
        "publisher_id",
        "method",
        "url",
        "body",
        "host",
        "due_at",
    ]


def test_demo_runs_the_whole_story(tmp_path):
    out = run("demo", "--out", str(tmp_path / "demo"))
    assert out.returncode == 0, out.stderr
    assert "Run it again: nothing is sent twice" in out.stdout
    assert "0 postbacks, 0 delivered, 0 failed in 0 attempts" in out.stdout
    assert (tmp_path / "demo" / "audit_chart.html").exists()


def test_long_commands_say_each_step_on_a_terminal(capsys):
    import re

    from postback_lab._commands import Stages

    stages = Stages(enabled=True)
    with stages("reading events") as done:
        done["what"] = "3 rows"
    with stages("planning"):
        pass
    err = capsys.readouterr().err
    assert re.fullmatch(
        r"reading events \.\.\. 3 rows \(\d+\.\d s\)\nplanning \.\.\. done \(\d+\.\d s\)\n", err
    )
    with Stages(enabled=False)("quiet"):
        pass
    assert capsys.readouterr().err == ""
