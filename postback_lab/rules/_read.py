"""``read_rules``: ``postbacks.yaml`` (or a list of dicts) -> a validated RuleSet.

Every problem of a file is collected and raised together as one RuleValidationError,
each naming the file, the rule, the field, the bad value and the closest valid choice.
"""

from __future__ import annotations

import json
import re
from collections.abc import Mapping
from datetime import timedelta
from pathlib import Path
from typing import Any

import jinja2
import jinja2.meta
import jinja2.sandbox
import yaml

from .._errors import RuleValidationError, closest, did_you_mean
from ..events._schema import CANONICAL, EVENT_TYPES, STATUSES
from ._model import Rule, RuleSet
from ._template import Template, TemplateError, parse_template

FIELDS = (
    "name",
    "type",
    "offers",
    "publishers",
    "fire_on",
    "rejection_reasons",
    "goals",
    "delay",
    "method",
    "url",
    "headers",
    "body",
    "timeout",
    "enabled",
)
FIRE_ON = (*STATUSES, "all")
METHODS = ("GET", "POST")
_DURATION = re.compile(r"(\d+(?:\.\d+)?)\s*([smhd])")
_UNITS = {"s": 1, "m": 60, "h": 3600, "d": 86400}

BODY_ENV = jinja2.sandbox.SandboxedEnvironment(
    undefined=jinja2.StrictUndefined, autoescape=False, keep_trailing_newline=True
)


def read_rules(source: Any, *, columns: list[str] | None = None) -> RuleSet:
    """Read and validate rules from a YAML path, YAML text, a mapping or a list of dicts.

    ``columns`` (the events columns) makes unknown macros an error here rather than at
    plan time; without it, only names close to a canonical column are flagged.
    """
    if isinstance(source, RuleSet):
        return source
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
        data = _load_yaml(text, label)
    elif isinstance(source, str):
        data = _load_yaml(source, label)
    else:
        data = source
    if isinstance(data, Mapping):
        unknown = [k for k in data if k != "postbacks"]
        if unknown:
            raise RuleValidationError(
                [
                    f"{label}: unknown top-level key {unknown[0]!r}"
                    + did_you_mean(str(unknown[0]), ["postbacks"])
                ]
            )
        data = data.get("postbacks")
    if not isinstance(data, list):
        raise RuleValidationError([f"{label}: expected a list of rules under 'postbacks:'"])

    problems: list[str] = []
    rules: list[Rule] = []
    seen: dict[str, int] = {}
    for i, item in enumerate(data):
        try:
            rule: Rule | None = parse_rule(item, i, label, columns=columns)
        except RuleValidationError as exc:
            problems.extend(exc.problems)
            rule = None
        name = item.get("name") if isinstance(item, Mapping) else None
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
    return RuleSet(tuple(rules), label)


class _Loader(yaml.SafeLoader):
    """YAML 1.2 booleans: only true/false, so ``name: off`` or ``goals: [no]`` stay text."""


_Loader.yaml_implicit_resolvers = {
    k: [(tag, rx) for tag, rx in v if tag != "tag:yaml.org,2002:bool"]
    for k, v in yaml.SafeLoader.yaml_implicit_resolvers.items()
}
_Loader.add_implicit_resolver(
    "tag:yaml.org,2002:bool",
    re.compile(r"^(?:true|True|TRUE|false|False|FALSE)$"),
    list("tTfF"),
)


def _load_yaml(text: str, label: str) -> Any:
    try:
        return yaml.load(text, Loader=_Loader)
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f" at line {mark.line + 1}, column {mark.column + 1}" if mark else ""
        problem = getattr(exc, "problem", None) or str(exc).splitlines()[0]
        raise RuleValidationError([f"{label}: invalid YAML{where}: {problem}"]) from exc


def parse_rule(
    item: Any, index: int, source: str = "<rules>", *, columns: list[str] | None = None
) -> Rule:
    """Validate one rule mapping; raises RuleValidationError listing all its problems."""
    if not isinstance(item, Mapping):
        raise RuleValidationError([f"{source}: rule #{index + 1}: expected a mapping of fields"])
    name = item.get("name")
    label = (
        f"{source}: rule {name!r} (#{index + 1})"
        if isinstance(name, str) and name.strip()
        else f"{source}: rule #{index + 1}"
    )
    problems: list[str] = []

    def bad(field: str, msg: str) -> None:
        problems.append(f"{label}, field {field!r}: {msg}")

    for key in item:
        if key not in FIELDS:
            bad(str(key), f"unknown key{did_you_mean(str(key), FIELDS)}")
    if not isinstance(name, str) or not name.strip():
        bad("name", "required, a non-empty text")
        name = f"#{index + 1}"

    kwargs: dict[str, Any] = {"name": name.strip(), "source": source, "index": index}
    kwargs["type"] = _choice(item.get("type", "conversion"), EVENT_TYPES, "type", bad)
    kwargs["fire_on"] = _choice(item.get("fire_on", "approved"), FIRE_ON, "fire_on", bad)
    method = item.get("method", "GET")
    kwargs["method"] = _choice(str(method).upper(), METHODS, "method", bad)
    for field in ("offers", "publishers"):
        kwargs[field] = _ids(item.get(field, "all"), field, bad, allow_all=True)
    for field in ("rejection_reasons", "goals"):
        if item.get(field) is not None:
            kwargs[field] = _ids(item[field], field, bad, allow_all=False)
    if kwargs.get("rejection_reasons") is not None and kwargs["fire_on"] not in ("rejected", "all"):
        bad(
            "rejection_reasons",
            f"only applies with fire_on: rejected or all, not {kwargs['fire_on']!r}",
        )
    kwargs["delay"] = _duration(item.get("delay", 0), "delay", bad, allow_zero=True)
    if item.get("timeout") is not None:
        t = _duration(item["timeout"], "timeout", bad, allow_zero=False)
        kwargs["timeout"] = t.total_seconds()
    enabled = item.get("enabled", True)
    if not isinstance(enabled, bool):
        bad("enabled", f"expected true or false, got {enabled!r}")
    kwargs["enabled"] = bool(enabled)

    url = item.get("url")
    if not isinstance(url, str) or not url.strip():
        bad("url", "required, an http(s) URL template")
    else:
        kwargs["url"] = _url(url.strip(), bad, columns)
    headers = item.get("headers")
    if headers is not None:
        if not isinstance(headers, Mapping):
            bad("headers", "expected a mapping of header name to value")
        else:
            parsed = []
            for k, v in headers.items():
                try:
                    t = parse_template(str(v))
                except TemplateError as exc:
                    bad(f"headers.{k}", str(exc))
                    continue
                _check_columns(t, f"headers.{k}", bad, columns)
                parsed.append((str(k), t))
            kwargs["headers"] = tuple(parsed)
    body = item.get("body")
    if body is not None:
        if kwargs["method"] != "POST":
            bad("body", "a body needs method: POST")
        kwargs["body"], kwargs["body_columns"] = _body(str(body), bad, columns)

    if problems:
        raise RuleValidationError(problems)
    return Rule(**kwargs)


def _choice(value: Any, valid: tuple[str, ...], field: str, bad: Any) -> str:
    text = str(value).strip()
    if text in valid:
        return text
    if text.lower() in valid:
        return text.lower()
    bad(field, f"{value!r} is not valid{did_you_mean(text, valid)}")
    return valid[0]


def _ids(value: Any, field: str, bad: Any, *, allow_all: bool) -> tuple[str, ...] | None:
    if allow_all and isinstance(value, str) and value.strip().lower() == "all":
        return None
    if isinstance(value, (str, int)) and not isinstance(value, bool):
        value = [value]
    if not isinstance(value, list) or not value:
        bad(field, f"expected {'all or ' if allow_all else ''}a list of values, got {value!r}")
        return None
    out = []
    for v in value:
        if isinstance(v, bool) or not isinstance(v, (str, int, float)):
            bad(field, f"{v!r} is not an id")
            continue
        text = str(v).strip()
        out.append(text[:-2] if isinstance(v, float) and text.endswith(".0") else text)
    return tuple(out)


def parse_duration(value: Any) -> timedelta:
    """``90``, ``'90s'``, ``'2m'``, ``'1h30m'``, ``'1.5d'`` -> timedelta; ValueError otherwise."""
    if isinstance(value, bool):
        raise ValueError(value)
    if isinstance(value, (int, float)):
        if value < 0:
            raise ValueError(value)
        return timedelta(seconds=value)
    text = str(value).strip().lower().replace(" ", "")
    if not text or _DURATION.sub("", text) != "":
        raise ValueError(value)
    return timedelta(seconds=sum(float(n) * _UNITS[u] for n, u in _DURATION.findall(text)))


def _duration(value: Any, field: str, bad: Any, *, allow_zero: bool) -> timedelta:
    try:
        d = parse_duration(value)
    except ValueError:
        bad(field, f"{value!r} is not a duration; write a number with s, m, h or d, like 30s or 2m")
        return timedelta(0)
    if not allow_zero and d <= timedelta(0):
        bad(field, f"{value!r} must be more than 0s")
    return d


def _url(text: str, bad: Any, columns: list[str] | None) -> Template:
    try:
        t = parse_template(text)
    except TemplateError as exc:
        bad("url", str(exc))
        return Template(text, (text,))
    head = t.parts[0] if t.parts else ""
    if not isinstance(head, str) or not re.match(r"https?://[^/?#{}]+", head, re.I):
        scheme = text.split(":", 1)[0] if ":" in text else text
        bad(
            "url",
            f"{text!r} is not an http(s) URL (starts with {scheme!r}); "
            "write https://host/path?… with a literal host",
        )
    _check_columns(t, "url", bad, columns)
    return t


def _check_columns(t: Template, field: str, bad: Any, columns: list[str] | None) -> None:
    for col in t.columns:
        _check_column(col, field, bad, columns)


def _check_column(col: str, field: str, bad: Any, columns: list[str] | None) -> None:
    if columns is not None:
        if col not in columns:
            bad(field, f"unknown macro {{{col}}}{did_you_mean(col, columns)}")
    elif col not in CANONICAL:
        near = closest(col, CANONICAL)
        if near is not None and near != col:
            bad(field, f"unknown macro {{{col}}} (did you mean {{{near}}}?)")


def _body(text: str, bad: Any, columns: list[str] | None) -> tuple[str, tuple[str, ...]]:
    try:
        ast = BODY_ENV.parse(text)
    except jinja2.TemplateSyntaxError as exc:
        bad("body", f"invalid Jinja2 template at line {exc.lineno}: {exc.message}")
        return text, ()
    names = tuple(sorted(jinja2.meta.find_undeclared_variables(ast)))
    for col in names:
        _check_column(col, "body", bad, columns)
    try:
        rendered = BODY_ENV.from_string(text).render(dict.fromkeys(names, "1"))
    except jinja2.exceptions.SecurityError as exc:
        bad("body", f"unsafe template: {exc}")
        return text, names
    except jinja2.TemplateError as exc:
        bad("body", f"cannot render: {exc}")
        return text, names
    if rendered.lstrip().startswith(("{", "[")):
        try:
            json.loads(rendered)
        except json.JSONDecodeError as exc:
            bad("body", f"not valid JSON after rendering ({exc.msg} at character {exc.pos + 1})")
    return text, names
