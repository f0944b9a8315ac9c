"""``read_rules``: ``postbacks.yaml`` (or YAML text, a mapping, a list of dicts) -> a
validated RuleSet, every problem of the file reported at once."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any, TypeAlias

from .._errors import RuleValidationError, did_you_mean
from ._model import Rule, RuleSet
from ._statuses import StatusRules, status_rules
from ._validate import alert_targets, rule_fields
from ._yaml import load_yaml, repeated_keys

#: what ``read_rules`` (and every function taking rules) reads: a RuleSet already read, a
#: YAML/JSON file path, YAML text, a mapping with ``postbacks:``, or a list of rule dicts
RulesSource: TypeAlias = RuleSet | str | Path | Mapping[str, Any] | Sequence[Mapping[str, Any]]

#: the keys a rules file may have at its top
TOP_LEVEL = ("postbacks", "alerts", "statuses")


def read_rules(
    data: RulesSource,
    *,
    event_columns: Sequence[str] | None = None,
    dialect: str | None = None,
) -> RuleSet:
    """Read and validate rules from a YAML path, YAML text, a mapping or a list of dicts
    (a RuleSet passes through).

    ``event_columns`` (the columns of the events, ``events.frame.columns``) makes unknown
    macros an error here, together with every other problem, rather than at plan time;
    without it, only names close to a canonical column are flagged. ``dialect``
    (``cake``, ``tune``, ``keitaro`` …) translates URLs and headers pasted from that
    platform; a rule's ``dialect:`` wins.
    """
    if isinstance(data, RuleSet):
        return data
    columns = None if event_columns is None else list(event_columns)
    label, doc, duplicates = _load(data)
    alerts: tuple[tuple[str, str | None], ...] = ()
    statuses = StatusRules()
    problems: list[str] = []
    if isinstance(doc, Mapping):
        statuses, problems = _statuses(doc, label, duplicates)
        if doc.get("alerts") is not None:
            alerts = alert_targets(doc["alerts"], label)
        doc = doc.get("postbacks")
    if not isinstance(doc, list):
        raise RuleValidationError(
            [*problems, f"{label}: expected a list of rules under 'postbacks:'"]
        )

    rules: list[Rule] = []
    seen: dict[str, int] = {}
    for i, item in enumerate(doc):
        try:
            rule: Rule | None = Rule(
                **rule_fields(item, i, label, columns=columns, default_dialect=dialect)
            )
        except RuleValidationError as exc:
            problems.extend(exc.problems)
            rule = None
        name = item.get("name") if isinstance(item, Mapping) else None
        for key, first, again in repeated_keys(item, duplicates):
            who = f"rule {name.strip()!r} (#{i + 1})" if isinstance(name, str) else f"rule #{i + 1}"
            problems.append(
                f"{label}: {who}, field {key!r}: written twice (lines {first} and {again}); "
                "keep one"
            )
        if isinstance(name, str) and name.strip():
            name = name.strip()
            if name in seen:
                problems.append(
                    f"{label}: rule {name!r} (#{i + 1}), field 'name': duplicate name, already "
                    f"used by rule #{seen[name] + 1}; names must be unique"
                )
                continue
            seen[name] = i
        if rule is not None:
            rules.append(rule)
    if problems:
        raise RuleValidationError(problems)
    return RuleSet(tuple(rules), label, alerts, statuses)


def read_statuses(source: RulesSource) -> StatusRules:
    """Only the ``statuses:`` of a rules file (validated; the rules are not): what the
    command line needs before it reads the events, which come before the full check of
    the rules (their macros are checked against the events' columns)."""
    if isinstance(source, RuleSet):
        return source.statuses
    label, data, duplicates = _load(source)
    if not isinstance(data, Mapping):
        return StatusRules()
    statuses, problems = _statuses(data, label, duplicates)
    if problems:
        raise RuleValidationError(problems)
    return statuses


def _load(source: Any) -> tuple[str, Any, dict[int, list[tuple[str, int, int]]]]:
    """(label, document, repeated keys) of a rules path, YAML text or ready data."""
    label = "<rules>"
    if isinstance(source, Path) or (
        isinstance(source, str)
        and "\n" not in source
        and source.endswith((".yaml", ".yml", ".json"))
    ):
        path = Path(source)
        label = str(path)
        try:
            text = path.read_text(encoding="utf-8-sig")
        except FileNotFoundError:
            raise RuleValidationError([f"{label}: no such rules file"]) from None
        except (OSError, UnicodeDecodeError) as exc:
            raise RuleValidationError([f"{label}: cannot read ({exc})"]) from exc
        data, duplicates = load_yaml(text, label)
    elif isinstance(source, str):
        data, duplicates = load_yaml(source, label)
    else:
        data, duplicates = source, {}
    return label, data, duplicates


def _statuses(
    data: Mapping[Any, Any], label: str, duplicates: dict[int, list[tuple[str, int, int]]]
) -> tuple[StatusRules, list[str]]:
    """The top-level keys checked (an unknown one raises), then the ``statuses:`` of the
    file and its problems, reported with the rules' own."""
    for key, first, again in duplicates.get(id(data), []):
        raise RuleValidationError(
            [f"{label}: top-level key {key!r} written twice (lines {first} and {again})"]
        )
    unknown = [k for k in data if k not in TOP_LEVEL]
    if unknown:
        raise RuleValidationError(
            [
                f"{label}: unknown top-level key {unknown[0]!r}"
                + did_you_mean(str(unknown[0]), TOP_LEVEL)
            ]
        )
    statuses, problems = status_rules(data.get("statuses"), label)
    problems += [
        f"{label}: field 'statuses.{key}': written twice (lines {first} and {again}); keep one"
        for key, first, again in repeated_keys(data.get("statuses"), duplicates)
    ]
    return statuses, problems


def parse_rule(
    item: object, index: int, source: str = "<rules>", *, columns: list[str] | None = None
) -> Rule:
    """Validate one rule mapping into a Rule; raises RuleValidationError listing all its
    problems."""
    return Rule(**rule_fields(item, index, source, columns=columns))
