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
    out = run("demo", "-o", str(tmp_path / "demo"))
    assert out.returncode == 0, out.stderr
    assert "Run it again: nothing is sent twice" in out.stdout
    assert "0 postbacks, 0 delivered, 0 failed in 0 attempts" in out.stdout
    assert (tmp_path / "demo" / "audit_chart.html").exists()


def test_long_commands_say_each_step_on_a_terminal(capsys):
    import re

    from postback_lab.cli._inputs import Stages

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

    from postback_lab import cli
    from postback_lab.cli import _log

    monkeypatch.setattr(tempfile, "tempdir", str(tmp_path))
    monkeypatch.setattr(_log, "cmd_audit", _raising(ZeroDivisionError("division by zero\nmore")))
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

    from postback_lab import cli
    from postback_lab.cli import _plan

    monkeypatch.setattr(tempfile, "tempdir", str(tmp_path))
    monkeypatch.setattr(_plan, "cmd_plan", _raising(ImportError("no module named x")))
    assert cli.main(["plan", "e.csv", "--rules", "r.yaml"]) == 3
    assert "internal error, please report: no module named x" in capsys.readouterr().err


def test_exit_codes_of_expected_errors(monkeypatch, capsys):
    from postback_lab import DeliveryError, InputError, StoreLockedError, cli
    from postback_lab.cli import _log

    cases = [
        (InputError("bad column"), 2, "postback-lab: error: bad column\n"),
        (
            StoreLockedError("log.duckdb is in use"),
            2,
            "postback-lab: error: log.duckdb is in use\n",
        ),
        (DeliveryError("3 not delivered"), 1, "postback-lab: error: 3 not delivered\n"),
        (KeyboardInterrupt(), 130, "interrupted; completed attempts are in the log\n"),
    ]
    for exc, code, message in cases:
        monkeypatch.setattr(_log, "cmd_audit", _raising(exc))
        assert cli.main(["audit"]) == code
        assert capsys.readouterr().err == message


def test_argument_errors_exit_2():
    out = run("send")  # the plan argument is missing
    assert out.returncode == 2 and "the following arguments are required: plan" in out.stderr


def test_every_command_runs_a_function_of_its_family_module():
    """Each command's body lives in the module of its family (``cli._plan``, ``cli._log``,
    ...), the module that adds the command to the parser."""
    import importlib

    from postback_lab import cli

    def commands(parser, dest="command"):
        sub = next(a for a in parser._actions if a.dest == dest)
        for name, p in sub.choices.items():
            if p.get_default("func") is None:  # a command of verbs: log show|export|prune
                yield from commands(p, "verb")
            else:
                yield name, p.get_default("func")

    families = set()
    for name, func in commands(cli.build_parser()):
        home = importlib.import_module(func.__module__)
        assert home.__name__.startswith("postback_lab.cli._"), name
        assert getattr(home, func.__name__) is func, name
        families.add(home.__name__.removeprefix("postback_lab.cli."))
    assert families == {"_demo", "_hosts", "_log", "_plan", "_send"}


def _loaded_by(*args: str) -> set[str]:
    """The libraries and stages a fresh interpreter has loaded after running one command."""
    watch = (
        "httpx",
        "aiohttp",
        "altair",
        "deltalake",
        "postback_lab.sending",
        "postback_lab.auditing",
        "postback_lab.scale",
        "postback_lab.notebook",
    )
    probe = (
        "import contextlib, io, sys\nfrom postback_lab.cli import main\n"
        "with contextlib.redirect_stdout(io.StringIO()):\n"
        f"    code = main({list(args)!r})\n"
        f"print(code, sorted(m for m in {watch!r} if m in sys.modules))"
    )
    out = subprocess.run(
        [sys.executable, "-c", probe], capture_output=True, text=True, timeout=120, check=True
    )
    code, loaded = out.stdout.strip().splitlines()[-1].split(" ", 1)
    assert code == "0", out.stderr
    return set(eval(loaded))


def test_each_command_loads_only_the_stages_it_uses(tmp_path):
    """``plan`` loads no sender and no HTTP client; ``audit`` no sender either (backfill,
    which sends, loads on first use); neither loads Delta Lake or the charts."""
    from postback_lab import sample
    from postback_lab.store import import_log

    paths = sample.write(tmp_path / "s", 100)
    plan = _loaded_by(
        "plan", str(paths["events"]), "--rules", str(paths["rules"]), "-o", str(tmp_path / "p")
    )
    assert plan == set()
    db = tmp_path / "log.duckdb"
    import_log(paths["platform_log"], db)
    assert _loaded_by("audit", "--db", str(db)) == {"postback_lab.auditing"}


def test_plan_explains_also_a_scoped_plan_it_writes(tmp_path, capsys):
    """``--explain`` is honoured with a scope and ``-o`` too (it was dropped there)."""
    from postback_lab import sample
    from postback_lab.cli import main

    paths = sample.write(tmp_path / "s", 100)
    args = [str(paths["events"]), "--rules", str(paths["rules"]), "-o", str(tmp_path / "p")]
    assert main(["plan", *args, "--rule", "Affili approved sales", "--explain"]) == 0
    out = capsys.readouterr().out
    assert "excluded:" in out
    assert out.endswith(f"plan written to {tmp_path / 'p'}\n")
    assert pl.read_parquet(tmp_path / "p")["rule"].unique().to_list() == ["Affili approved sales"]


def test_a_partitioned_plan_refuses_a_rule_it_does_not_have(tmp_path, capsys):
    """The scope of a partitioned plan is checked as plan checks it (the plans are
    compared in tests/scale/test_engine_reading.py)."""
    from postback_lab import sample as _sample
    from postback_lab.cli import main as _main

    events = _sample.data_dir() / "events.csv"
    rules = tmp_path / "rules.yaml"
    rules.write_text(_sample.rules_yaml("http://127.0.0.1:9"))
    code = _main(
        [
            "plan",
            str(events),
            "--rules",
            str(rules),
            "--engine",
            "local",
            "-o",
            str(tmp_path / "p"),
            "--rule",
            "CRM deposit",
        ]
    )
    assert code == 2
    assert capsys.readouterr().err == (
        "postback-lab: error: --rule 'CRM deposit': no such rule (did you mean 'CRM deposits'?)\n"
    )
