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


def _raising(exc: BaseException):
    def command(a):
        raise exc

    return command


def test_unexpected_errors_exit_3_with_the_traceback_in_a_file(tmp_path, monkeypatch, capsys):
    import tempfile

    from postback_lab import _commands, cli

    monkeypatch.setattr(tempfile, "tempdir", str(tmp_path))
    monkeypatch.setattr(_commands, "cmd_audit", _raising(ZeroDivisionError("division by zero\nmore")))
    assert cli.main(["audit", "--db", "x.duckdb"]) == 3
    err = capsys.readouterr().err
    (written,) = tmp_path.glob("postback-lab-traceback-*.txt")
    assert err == (
        "postback-lab: internal error, please report: division by zero "
        f"(traceback written to {written})\n"
    )
    text = written.read_text()
    assert "command: postback-lab audit --db x.duckdb" in text
    assert "Traceback (most recent call last)" in text and "ZeroDivisionError" in text


def test_import_errors_are_internal_errors_too(tmp_path, monkeypatch, capsys):
    import tempfile

    from postback_lab import _commands, cli

    monkeypatch.setattr(tempfile, "tempdir", str(tmp_path))
    monkeypatch.setattr(_commands, "cmd_plan", _raising(ImportError("no module named x")))
    assert cli.main(["plan", "e.csv", "--rules", "r.yaml"]) == 3
    assert "internal error, please report: no module named x" in capsys.readouterr().err


def test_exit_codes_of_expected_errors(monkeypatch, capsys):
    from postback_lab import DeliveryError, InputError, StoreLockedError, _commands, cli

    cases = [
        (InputError("bad column"), 2, "postback-lab: error: bad column\n"),
        (StoreLockedError("log.duckdb is in use"), 2, "postback-lab: error: log.duckdb is in use\n"),
        (DeliveryError("3 not delivered"), 1, "postback-lab: error: 3 not delivered\n"),
        (KeyboardInterrupt(), 130, "interrupted; completed attempts are in the log\n"),
    ]
    for exc, code, message in cases:
        monkeypatch.setattr(_commands, "cmd_audit", _raising(exc))
        assert cli.main(["audit"]) == code
        assert capsys.readouterr().err == message


def test_argument_errors_exit_2():
    out = run("send")  # the plan argument is missing
    assert out.returncode == 2 and "the following arguments are required: plan" in out.stderr


def test_every_command_runs_a_function_of_the_commands_module():
    from postback_lab import _commands, _hosts_cli, _log_cli, cli

    def commands(parser, dest="command"):
        sub = next(a for a in parser._actions if a.dest == dest)
        for name, p in sub.choices.items():
            if p.get_default("func") is None:  # a command of verbs: log show|export|prune
                yield from commands(p, "verb")
            else:
                yield name, p.get_default("func")

    for name, func in commands(cli.build_parser()):
        if func.__module__.endswith(("_log_cli", "_hosts_cli")):
            home = _log_cli if func.__module__.endswith("_log_cli") else _hosts_cli
            assert getattr(home, func.__name__) is func, name
        else:  # the parser names the body; _commands is imported when a command runs
            assert callable(getattr(_commands, func.__name__)), name
