"""The reference pages cover what the code has: every CLI command, flag and exit code, every
plan and log column, outcome and rule key, every public name; and nothing in the repository
points at files outside it."""

from __future__ import annotations

import re

import pytest

import postback_lab
from postback_lab import cli
from postback_lab.events import CANONICAL
from postback_lab.plan import PLAN_SCHEMA
from postback_lab.rules._validate import FIELDS
from postback_lab.store import LOG_COLUMNS, OUTCOMES

from ._pages import DOCS, ROOT


def section(page: str, heading: str) -> str:
    """The text under ``heading`` (a Markdown heading's title) up to the next heading of the
    same or a higher level."""
    text = (DOCS / page).read_text(encoding="utf-8")
    m = re.search(rf"^(#+) {re.escape(heading)}\s*$", text, re.M)
    assert m is not None, f"docs/{page} has no heading {heading!r}"
    level = len(m.group(1))
    end = re.compile(rf"^#{{1,{level}}} ", re.M).search(text, m.end())
    return text[m.end() : end.start() if end else len(text)]


def table_keys(text: str) -> set[str]:
    """The names in backticks in the first cell of each table row."""
    keys: set[str] = set()
    for line in text.splitlines():
        if line.startswith("| `"):
            keys.update(re.findall(r"`([^`]+)`", line.split(" | ")[0]))
    return keys


def _subcommands() -> dict[str, list[str]]:
    parser = cli.build_parser()
    sub = next(a for a in parser._actions if a.dest == "command")
    return {
        name: [s for a in p._actions for s in a.option_strings if s not in ("-h", "--help")]
        for name, p in sub.choices.items()  # type: ignore[union-attr]
    }


@pytest.mark.parametrize("command", sorted(_subcommands()))
def test_every_command_and_flag_is_documented(command: str) -> None:
    text = section("cli.md", command)
    missing = [flag for flag in _subcommands()[command] if f"`{flag}" not in text]
    assert missing == [], f"docs/cli.md, section {command}: document {missing}"


def test_every_exit_code_is_documented() -> None:
    codes = {v for k, v in vars(cli).items() if k.startswith("EXIT_")}
    assert {int(c) for c in table_keys(section("cli.md", "Exit codes"))} == codes


def test_every_events_column_is_documented() -> None:
    documented = table_keys(section("schemas.md", "Events"))
    assert set(CANONICAL) <= documented, set(CANONICAL) - documented


def test_every_plan_column_is_documented() -> None:
    assert table_keys(section("schemas.md", "The dispatch plan")) == set(PLAN_SCHEMA)


def test_every_log_column_and_outcome_is_documented() -> None:
    log = section("schemas.md", "The attempt log")
    assert set(LOG_COLUMNS) <= table_keys(log)
    assert table_keys(section("schemas.md", "Outcomes")) == set(OUTCOMES)


def test_every_rule_key_is_documented() -> None:
    documented = table_keys(section("rules.md", "Keys"))
    assert set(FIELDS) <= documented, set(FIELDS) - documented


def test_every_public_name_is_in_the_api_reference() -> None:
    text = (DOCS / "api.md").read_text(encoding="utf-8")
    shown = set(re.findall(r"^::: postback_lab\.(\w+)", text, re.M))
    shown |= set(re.findall(r"^### \w+ \{#postback_lab\.(\w+)\}", text, re.M))  # by hand
    public = set(postback_lab.__all__) - {"__version__"}
    assert public <= shown, public - shown


def test_readme_links_into_the_docs_exist() -> None:
    text = (ROOT / "README.md").read_text(encoding="utf-8")
    links = re.findall(r"\]\(([^)#:]+)(?:#[^)]*)?\)", text)
    assert links, "the README links into the docs"
    assert [link for link in links if not (ROOT / link).exists()] == []
    assert "make test" in text  # what CI runs


# spelled in pieces so that this file does not name them either
OUTSIDE = ("shared" + "/", "DES" + "IGN", "PERF" + "_NOTES")
SCANNED = ("postback_lab", "docs", "tests", "benchmarks", "notebooks", ".ci")
TOP = ("README.md", "pyproject.toml", "Makefile", "mkdocs.yml")


def test_nothing_points_outside_the_repository() -> None:
    files = [ROOT / name for name in TOP]
    for folder in SCANNED:
        files += [
            p
            for p in (ROOT / folder).rglob("*")
            if p.is_file() and "__pycache__" not in p.parts and p.suffix not in (".png", ".pyc")
        ]
    found = []
    for path in files:
        text = path.read_text(encoding="utf-8", errors="replace")
        found += [f"{path.relative_to(ROOT)}: {w}" for w in OUTSIDE if w in text]
    assert found == []
