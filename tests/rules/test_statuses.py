"""The rules file's ``statuses:`` (your status spellings, statuses left out): read and
checked with the rules, applied wherever the command line reads events with that file,
the command line's ``--status-map``/``--ignore-status`` winning."""

from __future__ import annotations

from pathlib import Path

import pytest

from postback_lab import RuleValidationError, read_plan, read_rules
from postback_lab.cli import main
from postback_lab.rules import StatusRules, read_statuses

EVENTS = """\
transaction_id,status,occurred_at,click_id
T1,sale,2026-11-03T10:00:00Z,c1
T2,trash,2026-11-03T10:00:00Z,c2
T3,ping,2026-11-03T10:00:00Z,c3
T4,approved,2026-11-03T10:00:00Z,c4
"""

RULES = """\
statuses:
  map: {Sale: approved, trash: rejected}
  ignore: [ping, test]
postbacks:
  - name: sales
    fire_on: approved
    url: https://p.example/?c={click_id}
  - name: rejects
    fire_on: rejected
    url: https://r.example/?c={click_id}
"""


@pytest.fixture
def files(tmp_path: Path) -> tuple[Path, Path]:
    events, rules = tmp_path / "events.csv", tmp_path / "postbacks.yaml"
    events.write_text(EVENTS)
    rules.write_text(RULES)
    return events, rules


def _planned(tmp_path: Path, *args: str) -> list[tuple[str, str, str]]:
    out = tmp_path / "plan.parquet"
    assert main(["plan", *args, "-o", str(out)]) == 0
    rows = read_plan(out).frame.select("rule", "transaction_id", "status").sort("transaction_id")
    return rows.rows()


def test_read_with_the_rules(files: tuple[Path, Path]) -> None:
    _, rules = files
    statuses = read_rules(rules).statuses
    assert statuses == StatusRules((("sale", "approved"), ("trash", "rejected")), ("ping", "test"))
    assert statuses.status_map == {"sale": "approved", "trash": "rejected"}
    assert read_statuses(rules) == statuses


def test_the_command_line_reads_events_with_the_files_statuses(
    tmp_path: Path, files: tuple[Path, Path], capsys: pytest.CaptureFixture[str]
) -> None:
    events, rules = files
    assert _planned(tmp_path, str(events), "--rules", str(rules)) == [
        ("sales", "T1", "approved"),
        ("rejects", "T2", "rejected"),
        ("sales", "T4", "approved"),
    ]
    assert "1 row with an ignored status (ping, test) left out" in capsys.readouterr().err
    assert main(["why", "T2", str(events), "--rules", str(rules)]) == 0
    assert "rejects [rejected at 2026-11-03 10:00:00]: fires" in capsys.readouterr().out


def test_command_line_flags_win_over_the_file(tmp_path: Path, files: tuple[Path, Path]) -> None:
    events, rules = files
    flags = ["--status-map", "sale=rejected,ping=approved", "--ignore-status", "trash"]
    assert _planned(tmp_path, str(events), "--rules", str(rules), *flags) == [
        ("rejects", "T1", "rejected"),
        ("sales", "T3", "approved"),
        ("sales", "T4", "approved"),
    ]


def test_overridden_keeps_the_rest_of_the_file() -> None:
    file = StatusRules((("sale", "approved"), ("trash", "rejected")), ("ping", "test"))
    assert file.overridden({"Ping": "approved"}, ["sale"]) == StatusRules(
        (("trash", "rejected"), ("ping", "approved")), ("test", "sale")
    )
    assert file.overridden(None, None) == file


def test_problems_name_the_file_and_the_field(tmp_path: Path) -> None:
    path = tmp_path / "postbacks.yaml"
    path.write_text(
        "statuses:\n"
        "  maps: {sale: approved}\n"
        "  map: {sale: aproved, test: rejected}\n"
        "  ignore: [test]\n"
        "postbacks:\n"
        "  - name: r\n"
        "    url: https://p.example/\n"
    )
    with pytest.raises(RuleValidationError) as err:
        read_rules(path)
    assert err.value.problems == [
        f"{path}: field 'statuses.maps': unknown key (did you mean 'map'?)",
        f"{path}: field 'statuses.map.sale': 'aproved' is not one of our statuses (did you "
        "mean 'approved'?)",
        f"{path}: field 'statuses.ignore': 'test' is also mapped (statuses.map.test); a "
        "status is mapped or ignored, not both",
    ]
    path.write_text("statuses: [ping]\npostbacks: []\n")
    with pytest.raises(RuleValidationError) as err:
        read_statuses(path)
    assert err.value.problems == [
        f"{path}: field 'statuses': expected a mapping like {{map: {{sale: approved}}, "
        "ignore: [ping, test]}"
    ]


def test_a_bad_statuses_field_is_one_clear_cli_error(
    tmp_path: Path, files: tuple[Path, Path], capsys: pytest.CaptureFixture[str]
) -> None:
    events, rules = files
    rules.write_text(RULES.replace("trash: rejected", "trash: binned"))
    assert main(["plan", str(events), "--rules", str(rules)]) == 2
    err = capsys.readouterr().err
    assert f"{rules}: field 'statuses.map.trash': 'binned' is not one of our statuses" in err
    assert "Traceback" not in err
