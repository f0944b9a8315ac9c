"""Rule and RuleSet: immutable values for the rules of ``postbacks.yaml``."""

from __future__ import annotations

import dataclasses
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import timedelta
from typing import Any

import polars as pl

from .._util import format_duration, render
from ._delivery import Success
from ._statuses import StatusRules
from ._template import Template, env_names
from ._validate import rule_fields


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
    #: firing rule 7: with a delay, a status change before ``due_at`` cancels the postback
    cancel_on_change: bool = True
    #: the environment variable of the Standard Webhooks signing secret, when signed
    sign: str | None = None
    method: str = "GET"
    headers: tuple[tuple[str, Template], ...] = ()
    body: str | None = None
    timeout: float | None = None
    enabled: bool = True
    body_columns: tuple[str, ...] = ()
    source: str = "<rules>"
    index: int = 0
    #: the platform syntax the rule was written in, and what was translated
    dialect: str | None = None
    translations: tuple[str, ...] = ()
    #: what answer counts as delivered (None: any 2xx)
    success: Success | None = None
    #: ``retry: {schedule: [...], for: D}``: the delays before each retry (seconds) and
    #: how long after the first attempt retries go on, over later runs too (None: the
    #: send's own schedule and window)
    retry_schedule: tuple[float, ...] | None = None
    retry_for: float | None = None
    #: ``pause: {...}``: circuit-breaker thresholds of the hosts this rule sends to, as
    #: (key, value) pairs: after, rate, min_attempts, window, cool_down (None: test off)
    pause: tuple[tuple[str, float | None], ...] = ()

    @property
    def columns(self) -> tuple[str, ...]:
        """Every events column a macro of this rule needs (url, headers, body)."""
        seen: dict[str, None] = dict.fromkeys(self.url.columns)
        for _, t in self.headers:
            seen.update(dict.fromkeys(t.columns))
        seen.update(dict.fromkeys(self.body_columns))
        return tuple(seen)

    @property
    def required_columns(self) -> tuple[str, ...]:
        """Columns that must have a value in a row for the rule to fire (macros without a
        ``default``, and every body variable)."""
        seen: dict[str, None] = dict.fromkeys(self.url.required)
        for _, t in self.headers:
            seen.update(dict.fromkeys(t.required))
        seen.update(dict.fromkeys(self.body_columns))
        return tuple(seen)

    @property
    def env(self) -> tuple[str, ...]:
        """The environment variables (``{env:NAME}``) the rule's templates use."""
        seen: dict[str, None] = dict.fromkeys(self.url.env)
        for _, t in self.headers:
            seen.update(dict.fromkeys(t.env))
        if self.body is not None:
            seen.update(dict.fromkeys(env_names(self.body)))
        if self.sign is not None:
            seen[self.sign] = None
        return tuple(seen)

    def where(self) -> str:
        """``file: rule 'name' (#3)`` — how messages point at this rule."""
        return f"{self.source}: rule {self.name!r} (#{self.index + 1})"

    def replace(self, **changes: Any) -> Rule:
        """A copy with some fields changed, validated like a rule read from YAML."""
        data = self.to_dict()
        data.update(changes)
        return Rule(**rule_fields(data, self.index, self.source))

    def to_dict(self) -> dict[str, Any]:
        """The rule as it would be written in ``postbacks.yaml`` (in our macro syntax, so
        a rule translated from a platform's dialect has no ``dialect`` key)."""
        out: dict[str, Any] = {"name": self.name, "type": self.type}
        out["offers"] = "all" if self.offers is None else list(self.offers)
        out["publishers"] = "all" if self.publishers is None else list(self.publishers)
        out["fire_on"] = self.fire_on
        if self.rejection_reasons is not None:
            out["rejection_reasons"] = list(self.rejection_reasons)
        if self.goals is not None:
            out["goals"] = list(self.goals)
        out["delay"] = format_duration(self.delay)
        if not self.cancel_on_change:
            out["cancel_on_change"] = False
        if self.sign is not None:
            out["sign"] = {"secret": "{env:" + self.sign + "}"}
        out["method"] = self.method
        out["url"] = self.url.text
        if self.headers:
            out["headers"] = {k: t.text for k, t in self.headers}
        if self.body is not None:
            out["body"] = self.body
        if self.timeout is not None:
            out["timeout"] = format_duration(timedelta(seconds=self.timeout))
        out["enabled"] = self.enabled
        if self.success is not None:
            out["success"] = self.success.to_dict()
        if self.retry_schedule is not None or self.retry_for is not None:
            retry: dict[str, Any] = {}
            if self.retry_schedule is not None:
                retry["schedule"] = [
                    format_duration(timedelta(seconds=d)) for d in self.retry_schedule
                ]
            if self.retry_for is not None:
                retry["for"] = format_duration(timedelta(seconds=self.retry_for))
            out["retry"] = retry
        if self.pause:
            out["pause"] = {
                k: (
                    format_duration(timedelta(seconds=v))
                    if k in ("window", "cool_down") and v is not None
                    else 0
                    if v is None
                    else v
                    if k == "rate"
                    else int(v)
                )
                for k, v in self.pause
            }
        return out


@dataclass(frozen=True)
class RuleSet:
    """An ordered, immutable collection of rules with unique names."""

    rules: tuple[Rule, ...]
    source: str = "<rules>"
    #: the top-level ``alerts:`` of the rules file: (webhook URL, environment variable of
    #: its signing secret or None), where alerts of sends and audits go
    alerts: tuple[tuple[str, str | None], ...] = ()
    #: the top-level ``statuses:``: your status spellings and the statuses left out,
    #: applied by the command line wherever it reads events with this file
    statuses: StatusRules = field(default_factory=StatusRules)

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

    def to_polars(self) -> pl.DataFrame:
        """One row per rule: name, type, fire_on, scope, delay, method, url, enabled."""
        return pl.DataFrame(
            [
                {
                    "name": r.name,
                    "type": r.type,
                    "fire_on": r.fire_on,
                    "offers": "all" if r.offers is None else ", ".join(r.offers),
                    "publishers": "all" if r.publishers is None else ", ".join(r.publishers),
                    "delay": format_duration(r.delay),
                    "method": r.method,
                    "url": r.url.text,
                    "enabled": r.enabled,
                }
                for r in self.rules
            ],
            schema={
                "name": pl.String,
                "type": pl.String,
                "fire_on": pl.String,
                "offers": pl.String,
                "publishers": pl.String,
                "delay": pl.String,
                "method": pl.String,
                "url": pl.String,
                "enabled": pl.Boolean,
            },
        )

    def _repr_html_(self) -> str:
        return render(
            "Rules", f"{len(self.rules)} rules from {self.source}", [("Rules", self.to_polars())]
        )
