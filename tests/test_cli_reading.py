"""The CLI reads platform exports and pasted platform URLs without Python."""

from __future__ import annotations

from pathlib import Path

import polars as pl

from postback_lab.cli import main

FIXTURES = Path(__file__).parent / "fixtures" / "presets"


def test_plan_a_cake_export_with_cake_macros(tmp_path: Path, capsys) -> None:
    rules = tmp_path / "r.yaml"
    rules.write_text(
        "postbacks:\n  - name: cake\n    fire_on: all\n"
        "    url: https://a.example/pb?cid=#s2#&amt=#price#&id=#leadid#\n"
    )
    out = tmp_path / "plan.parquet"
    code = main(
        [
            "plan",
            str(FIXTURES / "cake_conversions.csv"),
            "--rules",
            str(rules),
            "--source",
            "cake",
            "--dialect",
            "cake",
            "-o",
            str(out),
        ]
    )
    assert code == 0
    assert pl.read_parquet(out).sort("transaction_id")["url"].to_list() == [
        "https://a.example/pb?cid=clk-777&amt=1250&id=880011",
        "https://a.example/pb?cid=clk-778&amt=25&id=880012",
        "https://a.example/pb?cid=clk-779&amt=0&id=880013",
    ]
    assert "note:" in capsys.readouterr().err


def test_columns_and_timezone_flags(tmp_path: Path) -> None:
    events = tmp_path / "e.csv"
    events.write_text("Order;When;State\nA1;03/11/2026 14:25;Approved\n")
    rules = tmp_path / "r.yaml"
    rules.write_text(
        "postbacks:\n  - {name: r, url: 'https://a.example/?t={transaction_id}&at={occurred_at}'}\n"
    )
    out = tmp_path / "plan.parquet"
    code = main(
        [
            "plan",
            str(events),
            "--rules",
            str(rules),
            "--columns",
            "Order=transaction_id,When=occurred_at",
            "--date-format",
            "%d/%m/%Y %H:%M",
            "--timezone",
            "Europe/Berlin",
            "-o",
            str(out),
        ]
    )
    assert code == 0
    assert pl.read_parquet(out)["url"].to_list() == [
        "https://a.example/?t=A1&at=2026-11-03T13%3A25%3A00Z"
    ]


def test_rule_problems_and_unknown_macros_in_one_message(tmp_path: Path, capsys) -> None:
    events = tmp_path / "e.csv"
    events.write_text("transaction_id,occurred_at,status\nt1,2026-11-03 10:00,approved\n")
    rules = tmp_path / "r.yaml"
    rules.write_text(
        "postbacks:\n  - {name: a, fire_on: sold, url: 'https://a.example/?o={OID}'}\n"
    )
    assert main(["plan", str(events), "--rules", str(rules)]) == 2
    err = capsys.readouterr().err
    assert "field 'fire_on': 'sold' is not valid" in err and "unknown macro {OID}" in err


def test_bad_columns_flag_is_one_sentence(tmp_path: Path, capsys) -> None:
    events = tmp_path / "e.csv"
    events.write_text("transaction_id,occurred_at,status\nt1,2026-11-03 10:00,approved\n")
    rules = tmp_path / "r.yaml"
    rules.write_text("postbacks:\n  - {name: a, url: 'https://a.example/'}\n")
    assert main(["plan", str(events), "--rules", str(rules), "--columns", "oops"]) == 2
    assert "--columns 'oops': write SOURCE=COLUMN pairs" in capsys.readouterr().err


def test_plan_output_into_a_closed_pipe_is_not_an_error(tmp_path: Path) -> None:
    import subprocess
    import sys

    events = tmp_path / "e.csv"
    events.write_text(
        "transaction_id,occurred_at,status\n"
        + "".join(f"t{i},2026-11-03T10:00:00Z,approved\n" for i in range(200))
    )
    rules = tmp_path / "r.yaml"
    rules.write_text(
        "postbacks:\n"
        + "".join(f"  - {{name: r{i}, url: 'https://a.example/{i}'}}\n" for i in range(60))
    )
    cmd = f"{sys.executable} -m postback_lab.cli plan {events} --rules {rules} --explain | head -1"
    out = subprocess.run(["bash", "-o", "pipefail", "-c", cmd], capture_output=True, text=True)
    assert out.returncode == 0, out.stderr
    assert out.stderr == ""
    assert out.stdout.startswith("12,000 postbacks")


def test_every_flag_has_help_text():
    """``--help`` of each command explains every flag and positional (no bare names)."""
    import argparse

    from postback_lab.cli import build_parser

    parser = build_parser()
    sub = next(a for a in parser._actions if isinstance(a, argparse._SubParsersAction))
    bare = []

    def walk(name: str, p: argparse.ArgumentParser) -> None:
        for action in p._actions:
            if isinstance(action, argparse._SubParsersAction):
                for child, q in action.choices.items():
                    walk(f"{name} {child}", q)
            elif not isinstance(action, argparse._HelpAction) and not action.help:
                bare.append(f"{name}: {'/'.join(action.option_strings) or action.dest}")

    for name, p in sub.choices.items():
        walk(name, p)
    assert bare == []
