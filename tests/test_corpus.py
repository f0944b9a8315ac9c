"""Bad input corpus: every file gives a clear error or quarantined rows with reasons;
nothing is dropped silently and the CLI never shows a traceback."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from postback_lab import EventsError, LogImportError, RuleValidationError, read_events, read_rules
from postback_lab.store import import_log

CORPUS = Path(__file__).resolve().parent / "corpus"


def q(ev) -> list[tuple[int, str]]:
    return ev.quarantine.select("line", "reason").rows()


def test_ragged_rows_are_quarantined_with_their_lines():
    ev = read_events(CORPUS / "ragged.csv")
    assert ev.frame["transaction_id"].to_list() == ["t3"]
    assert q(ev) == [
        (2, "ragged row: 5 fields, the header has 3"),
        (3, "ragged row: 2 fields, the header has 3"),
    ]


def test_truncated_last_row_is_quarantined():
    ev = read_events(CORPUS / "truncated.csv")
    assert ev.frame["transaction_id"].to_list() == ["t1"]
    assert q(ev) == [(3, "unknown status 'appr' (valid: approved, rejected, pending)")]


def test_open_quote_swallows_the_rest_and_says_so():
    ev = read_events(CORPUS / "open_quote.csv")
    assert ev.frame["transaction_id"].to_list() == ["t0"]
    assert q(ev) == [(3, "ragged row: 1 fields, the header has 3")]


def test_nul_byte_in_an_id_is_quarantined():
    ev = read_events(CORPUS / "nul.csv")
    assert ev.frame["transaction_id"].to_list() == ["t2"]
    assert q(ev) == [(2, "NUL byte in transaction_id")]


def test_bom_is_ignored_and_latin1_needs_its_encoding():
    assert read_events(CORPUS / "bom.csv").frame["transaction_id"].to_list() == ["t1"]
    with pytest.raises(EventsError) as err:
        read_events(CORPUS / "latin1.csv")
    assert str(err.value) == (
        f"{CORPUS / 'latin1.csv'}: line 2 is not valid utf-8 (byte 0xe9); pass the file's "
        "encoding, e.g. encoding='latin-1' (CLI: --encoding latin-1)"
    )
    ev = read_events(CORPUS / "latin1.csv", encoding="latin-1")
    assert ev.frame["sub1"].to_list() == ["café"]


def test_column_written_twice_bad_ndjson_line_and_odd_payouts():
    with pytest.raises(EventsError, match="column 'sub1' appears twice in the header"):
        read_events(CORPUS / "duplicate_column.csv")
    ev = read_events(CORPUS / "bad_line.ndjson")
    assert ev.frame["transaction_id"].to_list() == ["t1"]
    assert [line for line, _ in q(ev)] == [2]
    ev = read_events(CORPUS / "payouts.csv")
    assert ev.frame.select("transaction_id", "payout").rows() == [("t2", 1250.0)]
    assert q(ev) == [(2, "bad payout '1e400'")]


def test_empty_file_and_huge_field(tmp_path):
    with pytest.raises(EventsError, match="empty"):
        read_events(CORPUS / "empty.csv")
    big = tmp_path / "big.csv"
    big.write_text(
        "transaction_id,occurred_at,status,sub1\nt1,2024-01-01,approved," + "x" * 2_000_000 + "\n"
    )
    assert len(read_events(big).frame["sub1"][0]) == 2_000_000


@pytest.mark.parametrize(
    ("name", "message"),
    [
        ("invalid.yaml", "invalid YAML at line 3, column 8"),
        (
            "duplicate_names.yaml",
            "rule 'a' (#2), field 'name': duplicate name, already used by rule #1",
        ),
        ("unknown_key.yaml", "field 'fire_onn': unknown key (did you mean 'fire_on'?)"),
        ("unknown_macro.yaml", "field 'url': unknown macro {clickidd} (did you mean {click_id}?)"),
        ("stray_brace.yaml", "field 'url': stray '{' at character 14"),
        ("not_http.yaml", "field 'url': 'javascript:alert(1)' is not an http(s) URL"),
        ("bad_delay.yaml", "field 'delay': '5 minutes' is not a duration"),
        ("not_a_list.yaml", "expected a list of rules under 'postbacks:'"),
        ("duplicate_key.yaml", "field 'url': written twice (lines 3 and 4); keep one"),
        ("huge_delay.yaml", "field 'delay': '99999999999d' is longer than 365 days"),
        ("cake_tokens.yaml", "#s2# is CAKE token syntax"),
        ("macro_in_host.yaml", "a macro may not touch the host"),
        ("jinja_power.yaml", "unsafe template: exponent 999999 is too large"),
    ],
)
def test_rule_files(name, message):
    with pytest.raises(RuleValidationError) as err:
        read_rules(CORPUS / name)
    assert message in str(err.value)


def test_malformed_exports(tmp_path):
    with pytest.raises(LogImportError, match="no column for status_code"):
        import_log(CORPUS / "export_no_code.csv", tmp_path / "log.duckdb")
    # a bad row is quarantined with its line and value, never the whole file
    result = import_log(CORPUS / "export_bad_time.csv", tmp_path / "log.duckdb")
    assert result.rows == 0
    assert result.quarantine.select("line", "reason").rows() == [(2, "bad fired_at 'not a time'")]


@pytest.mark.parametrize("name", ["invalid.yaml", "unknown_macro.yaml", "not_http.yaml"])
def test_cli_never_shows_a_traceback(name):
    out = subprocess.run(
        [
            sys.executable,
            "-m",
            "postback_lab.cli",
            "plan",
            str(CORPUS / "ragged.csv"),
            "--rules",
            str(CORPUS / name),
        ],
        capture_output=True,
        text=True,
    )
    assert out.returncode == 2
    assert out.stderr.startswith("postback-lab: error: ") and "Traceback" not in out.stderr


def test_cli_reports_quarantine_without_failing(tmp_path):
    rules = tmp_path / "r.yaml"
    rules.write_text("postbacks:\n  - {name: a, url: 'https://h.example/?t={transaction_id}'}\n")
    out = subprocess.run(
        [
            sys.executable,
            "-m",
            "postback_lab.cli",
            "plan",
            str(CORPUS / "ragged.csv"),
            "--rules",
            str(rules),
        ],
        capture_output=True,
        text=True,
    )
    assert out.returncode == 0
    assert "warning: 2 event rows quarantined (first: " in out.stderr
    assert "1 postback to fire" in out.stdout
