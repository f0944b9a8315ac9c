"""``read_rules``: ``postbacks.yaml`` (or YAML text, a mapping, a list of dicts) -> a
validated RuleSet, every problem of the file reported at once."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any, TypeAlias

from .._errors import RuleValidationError, did_you_mean
from ._model import Rule, RuleSet
from ._validate import alert_targets, rule_fields
from ._yaml import load_yaml, repeated_keys

#: what ``read_rules`` (and every function taking rules) reads: a RuleSet already read, a
#: YAML/JSON file path, YAML text, a mapping with ``postbacks:``, or a list of rule dicts
RulesSource: TypeAlias = RuleSet | str | Path | Mapping[str, Any] | Sequence[Mapping[str, Any]]


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
    source: Any = data
    columns = None if event_columns is None else list(event_columns)
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
        parsed, duplicates = load_yaml(text, label)
    elif isinstance(source, str):
        parsed, duplicates = load_yaml(source, label)
    else:
        parsed, duplicates = source, {}
    for key, first, again in duplicates.get(id(parsed), []):
        raise RuleValidationError(
            [f"{label}: top-level key {key!r} written twice (lines {first} and {again})"]
        )
    alerts: tuple[tuple[str, str | None], ...] = ()
    if isinstance(parsed, Mapping):
        unknown = [k for k in parsed if k not in ("postbacks", "alerts")]
        if unknown:
            raise RuleValidationError(
                [
                    f"{label}: unknown top-level key {unknown[0]!r}"
                    + did_you_mean(str(unknown[0]), ["postbacks", "alerts"])
                ]
            )
        if parsed.get("alerts") is not None:
            alerts = alert_targets(parsed["alerts"], label)
        parsed = parsed.get("postbacks")
    if not isinstance(parsed, list):
        raise RuleValidationError([f"{label}: expected a list of rules under 'postbacks:'"])

    problems: list[str] = []
    rules: list[Rule] = []
    seen: dict[str, int] = {}
    for i, item in enumerate(parsed):
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
    return RuleSet(tuple(rules), label, alerts)


def parse_rule(
    item: object, index: int, source: str = "<rules>", *, columns: list[str] | None = None
) -> Rule:
    """Validate one rule mapping into a Rule; raises RuleValidationError listing all its
    problems."""
    return Rule(**rule_fields(item, index, source, columns=columns))
