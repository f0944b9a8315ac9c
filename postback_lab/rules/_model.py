"""Rule and RuleSet: immutable values for ``postbacks.yaml`` (DESIGN contract 2)."""

from __future__ import annotations

import dataclasses
import html
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import timedelta
from typing import Any

from ._template import Template


@dataclass(frozen=True)
class Rule:
    """One postback rule. ``offers``/``publishers`` are None for ``all``."""

    name: str
    url: Template
    type: str = "conversion"
    offers: tuple[str, ...] | None = None
    publishers: tuple[str, ...] | None = None
    fire_on: str = "approved"
    rejection_reasons: tuple[str, ...] | None = None
    goals: tuple[str, ...] | None = None
    delay: timedelta = timedelta(0)
    method: str = "GET"
    headers: tuple[tuple[str, Template], ...] = ()
    body: str | None = None
    timeout: float | None = None
    enabled: bool = True
    body_columns: tuple[str, ...] = ()
    source: str = "<rules>"
    index: int = 0

    @property
    def columns(self) -> tuple[str, ...]:
        """Every events column a macro of this rule needs (url, headers, body)."""
        seen: dict[str, None] = dict.fromkeys(self.url.columns)
        for _, t in self.headers:
            seen.update(dict.fromkeys(t.columns))
        seen.update(dict.fromkeys(self.body_columns))
        return tuple(seen)

    def where(self) -> str:
        """``file: rule 'name' (#3)`` — how messages point at this rule."""
        return f"{self.source}: rule {self.name!r} (#{self.index + 1})"

    def replace(self, **changes: Any) -> Rule:
        """A copy with some fields changed, validated like a rule read from YAML."""
        from ._read import parse_rule  # the validator lives with the reader

        data = self.to_dict()
        data.update(changes)
        return parse_rule(data, self.index, self.source)

    def to_dict(self) -> dict[str, Any]:
        """The rule as it would be written in ``postbacks.yaml``."""
        out: dict[str, Any] = {"name": self.name, "type": self.type}
        out["offers"] = "all" if self.offers is None else list(self.offers)
        out["publishers"] = "all" if self.publishers is None else list(self.publishers)
        out["fire_on"] = self.fire_on
        if self.rejection_reasons is not None:
            out["rejection_reasons"] = list(self.rejection_reasons)
        if self.goals is not None:
            out["goals"] = list(self.goals)
        out["delay"] = f"{int(self.delay.total_seconds())}s"
        out["method"] = self.method
        out["url"] = self.url.text
        if self.headers:
            out["headers"] = {k: t.text for k, t in self.headers}
        if self.body is not None:
            out["body"] = self.body
        if self.timeout is not None:
            out["timeout"] = f"{self.timeout:g}s"
        out["enabled"] = self.enabled
        return out


@dataclass(frozen=True)
class RuleSet:
    """An ordered, immutable collection of rules with unique names."""

    rules: tuple[Rule, ...]
    source: str = "<rules>"

    def __iter__(self) -> Iterator[Rule]:
        return iter(self.rules)

    def __len__(self) -> int:
        return len(self.rules)

    def __getitem__(self, key: int | str) -> Rule:
        if isinstance(key, int):
            return self.rules[key]
        for r in self.rules:
            if r.name == key:
                return r
        raise KeyError(key)

    @property
    def names(self) -> list[str]:
        return [r.name for r in self.rules]

    def replace(self, name: str, **changes: Any) -> RuleSet:
        """A new RuleSet in which rule ``name`` has some fields changed (for what-if)."""
        self[name]  # KeyError for an unknown rule
        rules = tuple(r.replace(**changes) if r.name == name else r for r in self.rules)
        return dataclasses.replace(self, rules=rules)

    def __str__(self) -> str:
        lines = [f"{len(self.rules)} rules from {self.source}"]
        for r in self.rules:
            state = "" if r.enabled else " [disabled]"
            lines.append(f"  {r.name}: {r.type} on {r.fire_on}, {r.method} {r.url.text}{state}")
        return "\n".join(lines)

    def _repr_html_(self) -> str:
        rows = "".join(
            "<tr>"
            + "".join(
                f"<td>{html.escape(str(v))}</td>"
                for v in (
                    r.name,
                    r.type,
                    r.fire_on,
                    "all" if r.offers is None else ", ".join(r.offers),
                    "all" if r.publishers is None else ", ".join(r.publishers),
                    r.delay,
                    r.method,
                    r.url.text,
                    "yes" if r.enabled else "no",
                )
            )
            + "</tr>"
            for r in self.rules
        )
        head = "".join(
            f"<th>{h}</th>"
            for h in (
                "name",
                "type",
                "fire_on",
                "offers",
                "publishers",
                "delay",
                "method",
                "url",
                "enabled",
            )
        )
        return (
            f"<div><p>{len(self.rules)} rules from {html.escape(self.source)}</p>"
            f"<table><thead><tr>{head}</tr></thead><tbody>{rows}</tbody></table></div>"
        )
