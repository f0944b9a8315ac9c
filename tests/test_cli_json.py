"""``--format json`` of ``plan``, ``send``, ``backfill`` and ``import-log``: one JSON object
on stdout summarising the result (the keys docs/cli.md lists), against a real receiver on
127.0.0.1; and the sending flags, defined once for ``send`` and ``backfill``."""

from __future__ import annotations

import argparse
import json

import polars as pl
import pytest

from postback_lab import Receiver, sample
from postback_lab.cli import build_parser, main


def _files(tmp_path, url: str, n: int = 3):
    events = tmp_path / f"events{n}.csv"
    pl.DataFrame(
        {
            "transaction_id": [f"t{i}" for i in range(1, n + 1)],
            "status": "approved",
            "occurred_at": [f"2024-01-01T0{i}:00:00Z" for i in range(1, n + 1)],
            "publisher_id": "7",
            "offer_id": "1",
        }
    ).write_csv(events)
    rules = tmp_path / "postbacks.yaml"
    rules.write_text(f"postbacks:\n  - name: sales\n    url: {url}/pb?t={{transaction_id}}\n")
    return str(events), str(rules)


def _json(capsys, *args: str, code: int = 0) -> dict:
    assert main(list(args)) == code
    out = capsys.readouterr().out
    assert out.count("\n") == 1, out  # one object, one line, nothing else on stdout
    return json.loads(out)


def test_plan_json(tmp_path, capsys):
    events, rules = _files(tmp_path, "https://p.example")
    want = {
        "postbacks": 3,
        "rules": {"sales": 3},
        "hosts": 1,
        "first_due": "2024-01-01T01:00:00+00:00",
        "last_due": "2024-01-01T03:00:00+00:00",
        "quarantined": 0,
        "output": str(tmp_path / "p.parquet"),
    }
    # the table, for people, stays the default
    assert main(["plan", events, "--rules", rules, "-o", str(tmp_path / "p.parquet")]) == 0
    assert capsys.readouterr().out == (
        "3 postbacks to fire from 1 rule to 1 host, due 2024-01-01 01:00 to 2024-01-01 03:00 "
        f"UTC\n  sales: 3 to p.example\nplan written to {tmp_path / 'p.parquet'}\n"
    )
    assert (
        _json(
            capsys,
            "plan",
            events,
            "--rules",
            rules,
            "-o",
            str(tmp_path / "p.parquet"),
            "--format",
            "json",
        )
        == want
    )
    # in memory (a scope given) and without -o: the same keys, no file
    scoped = _json(capsys, "plan", events, "--rules", rules, "--rule", "sales", "--format", "json")
    assert scoped == {**want, "output": None}
    assert main(["plan", events, "--rules", rules, "--explain", "--format", "json"]) == 2
    assert "--explain prints tables" in capsys.readouterr().err


def test_send_backfill_and_import_log_json(tmp_path, capsys):
    with Receiver() as rx:
        events, rules = _files(tmp_path, rx.url)
        plan, db = tmp_path / "p.parquet", tmp_path / "log.duckdb"
        assert main(["plan", events, "--rules", rules, "-o", str(plan)]) == 0
        capsys.readouterr()
        sent = _json(
            capsys, "send", str(plan), "--db", str(db), "--no-progress", "--format", "json"
        )
        assert isinstance(sent.pop("run_id"), str) and sent.pop("seconds") >= 0
        assert sent == {
            "state": "completed",
            "log": str(db),
            "postbacks": 3,
            "delivered": 3,
            "failed": 0,
            "dry_run": 0,
            "cancelled": 0,
            "paused": 0,
            "superseded": 0,
            "skipped_delivered": 0,
            "waiting": 0,
            "carried": 0,
            "resent": 0,
            "attempts": 3,
            "hosts_paused": [],
            "has_failures": False,
            "delivered_elsewhere": 0,
        }
        # a fourth conversion later: backfill sends it alone
        events4, _ = _files(tmp_path, rx.url, n=4)
        args = [events4, "--rules", rules, "--db", str(db), "--no-progress", "--rule", "sales"]
        assert main(["backfill", *args, "--format", "json"]) == 0
        assert len(rx.requests) == 4
    out, err = capsys.readouterr()
    assert out.count("\n") == 1, out  # the one object; what the backfill says goes to stderr
    assert err == "backfill: 1 postbacks (missed + failed) match rule=sales; sending them\n"
    got = json.loads(out)
    assert got["before"] == {
        "delivered": 3,
        "failed": 0,
        "missed": 1,
        "unexpected": 0,
        "duplicate": 0,
        "dispatches": 4,
    }
    assert (got["to_send"], got["resend_delivered"], got["unlinked"]) == (1, 0, 0)
    assert (got["sent"]["postbacks"], got["sent"]["delivered"]) == (1, 1)
    assert got["has_failures"] is False


def test_import_log_json(tmp_path, capsys):
    paths = sample.write(tmp_path / "s", 100)
    db = tmp_path / "log.duckdb"
    first = _json(
        capsys, "import-log", str(paths["platform_log"]), "--db", str(db), "--format", "json"
    )
    assert first.pop("run_id").startswith("import-")
    rows = pl.read_csv(paths["platform_log"]).height
    assert first["rows"] + first["quarantined"] == rows and first["rows"] > 0
    assert first == {
        "file": str(paths["platform_log"]),
        "log": str(db),
        "rows": first["rows"],
        "delivered": first["delivered"],
        "duplicates": 0,
        "quarantined": first["quarantined"],
        "without_rule": 0,
        "without_status": first["without_status"],
        "notes": first["notes"],
    }
    again = _json(
        capsys, "import-log", str(paths["platform_log"]), "--db", str(db), "--format", "json"
    )
    assert (again["run_id"], again["rows"], again["duplicates"]) == (None, 0, first["rows"])


def _group(command: str, title: str) -> list[tuple]:
    parser = build_parser()
    sub = next(a for a in parser._actions if isinstance(a, argparse._SubParsersAction))
    p = sub.choices[command]
    group = next(g for g in p._action_groups if g.title and g.title.startswith(title))
    return [(tuple(a.option_strings), a.dest, a.default, a.help) for a in group._group_actions]


def test_send_and_backfill_share_one_definition_of_the_sending_flags():
    send, backfill = _group("send", "sending"), _group("backfill", "sending")
    # one definition; only the retry defaults each names differ (backfill retries briefly)
    retry = {"--retries", "--retry-for"}
    assert [f for f in send if f[0][0] not in retry] == [
        f for f in backfill if f[0][0] not in retry
    ]
    helps = {f[0][0]: f[3] for f in send}, {f[0][0]: f[3] for f in backfill}
    assert helps[0]["--retries"].startswith("retry schedule (default): ")
    assert helps[1]["--retries"].startswith("retry schedule (short): ")
    assert "(10m)" in helps[0]["--retry-for"] and "(1m)" in helps[1]["--retry-for"]
    assert [flags[0] for flags, *_ in send] == [
        "--concurrency",
        "--per-host",
        "--rate",
        "--retries",
        "--retry-for",
        "--notify",
        "--workers",
        "--pause-after",
        "--no-progress",
        "--allow-host",
        "--deny-private",
    ]
    assert all(help_text for *_, help_text in send)


@pytest.mark.parametrize("command", ["plan", "send", "backfill", "import-log"])
def test_format_json_is_offered(command):
    parser = build_parser()
    sub = next(a for a in parser._actions if isinstance(a, argparse._SubParsersAction))
    fmt = next(a for a in sub.choices[command]._actions if a.dest == "format")
    assert (fmt.choices, fmt.default) == (["table", "json"], "table")
