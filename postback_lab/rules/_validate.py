"""Validation of one rule mapping into the fields of a Rule.

Every problem of a rule is collected and raised together as one RuleValidationError,
each naming the file, the rule, the field, the bad value and the closest valid choice.
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable, Mapping
from datetime import timedelta
from typing import Any

import jinja2
import jinja2.meta

from .._errors import RuleValidationError, closest, did_you_mean
from .._util import parse_duration
from ..events import CANONICAL, EVENT_TYPES, STATUSES
from ._delivery import success_field
from ._dialects import foreign_hint, translate
from ._template import Template, TemplateError, body_environment, parse_template
from ._yaml import as_written

#: ``bad(field, message)`` records one problem of the rule being validated
Report = Callable[[str, str], None]

FIELDS = (
    "name",
    "type",
    "offers",
    "publishers",
    "fire_on",
    "rejection_reasons",
    "goals",
    "delay",
    "cancel_on_change",
    "sign",
    "method",
    "url",
    "headers",
    "body",
    "timeout",
    "enabled",
    "dialect",
    "success",
    "retry",
    "pause",
)
FIRE_ON = (*STATUSES, "all")
#: the longest delay or timeout a rule may have
LONGEST = timedelta(days=365)
METHODS = ("GET", "POST")


def rule_fields(
    item: object,
    index: int,
    source: str = "<rules>",
    *,
    columns: list[str] | None = None,
    default_dialect: str | None = None,
) -> dict[str, Any]:
    """Validate one rule mapping into the keyword arguments of ``Rule``; raises one
    RuleValidationError listing all its problems. ``default_dialect`` translates macros
    written in another platform's syntax (a rule's own ``dialect:`` wins)."""
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
    cancel = item.get("cancel_on_change", True)
    if not isinstance(cancel, bool):
        bad("cancel_on_change", f"expected true or false, got {cancel!r}")
    kwargs["cancel_on_change"] = cancel is not False
    if item.get("sign") is not None:
        kwargs["sign"] = _sign(item["sign"], bad)
    if item.get("timeout") is not None:
        timeout = _duration(item["timeout"], "timeout", bad, allow_zero=False)
        kwargs["timeout"] = timeout.total_seconds()
    enabled = item.get("enabled", True)
    if not isinstance(enabled, bool):
        bad("enabled", f"expected true or false, got {enabled!r}")
    kwargs["enabled"] = bool(enabled)

    dialect = item.get("dialect", default_dialect)
    notes: list[str] = []

    def native(text: str, field: str) -> str:
        """``text`` in our macro syntax: translated from the rule's dialect, if any."""
        if dialect is None:
            return text
        try:
            t = translate(text, str(dialect), columns=columns)
        except KeyError as exc:
            bad("dialect", str(exc.args[0]))
            return text
        for problem in t.problems:
            bad(field, problem)
        notes.extend(f"{field}: {n}" for n in t.notes)
        return t.text

    url = item.get("url")
    if not isinstance(url, str) or not url.strip():
        bad("url", "required, an http(s) URL template")
    else:
        kwargs["url"] = _url(native(url.strip(), "url"), bad, columns)
    headers = item.get("headers")
    if headers is not None:
        if not isinstance(headers, Mapping):
            bad("headers", "expected a mapping of header name to value")
        else:
            parsed = []
            for k, v in headers.items():
                try:
                    t = parse_template(native(str(v), f"headers.{k}"))
                except TemplateError as exc:
                    bad(f"headers.{k}", _hinted(str(exc), str(v)))
                    continue
                _check_columns(t, f"headers.{k}", bad, columns)
                parsed.append((str(k), t))
            kwargs["headers"] = tuple(parsed)
    body = item.get("body")
    if body is not None:
        if kwargs["method"] != "POST":
            bad("body", "a body needs method: POST")
        kwargs["body"], kwargs["body_columns"] = _body(str(body), bad, columns)

    if item.get("success") is not None:
        kwargs["success"] = success_field(item["success"], bad)
    if item.get("retry") is not None:
        kwargs["retry_schedule"], kwargs["retry_for"] = _retry(item["retry"], bad)
    if item.get("pause") is not None:
        kwargs["pause"] = _pause(item["pause"], bad)

    if dialect is not None:
        kwargs["dialect"] = str(dialect).strip().lower()
        kwargs["translations"] = tuple(notes)

    if problems:
        raise RuleValidationError(problems)
    return kwargs


def _sign(value: Any, bad: Report) -> str | None:
    """``sign: {secret: "{env:NAME}"}`` (or just ``sign: "{env:NAME}"``): the environment
    variable holding the Standard Webhooks signing secret (``whsec_...``)."""
    secret = value.get("secret") if isinstance(value, Mapping) else value
    if isinstance(value, Mapping):
        for key in value:
            if key not in ("secret", "scheme"):
                bad(f"sign.{key}", f"unknown key{did_you_mean(str(key), ('secret', 'scheme'))}")
        scheme = str(value.get("scheme", "standard-webhooks"))
        if scheme != "standard-webhooks":
            bad("sign.scheme", f"{scheme!r} is not supported (valid: standard-webhooks)")
    m = re.fullmatch(r"\{env:([A-Za-z_][A-Za-z0-9_]*)\}", str(secret or "").strip())
    if m is None:
        bad(
            "sign",
            "the signing secret must come from the environment, written "
            "sign: {secret: '{env:WEBHOOK_SECRET}'}",
        )
        return None
    return m.group(1)


def _retry(value: Any, bad: Report) -> tuple[tuple[float, ...] | None, float | None]:
    """``retry: {schedule: [5s, 5m, 30m], for: 24h}``: the delays before each retry and
    how long after the first attempt retries go on (over later runs too)."""
    if not isinstance(value, Mapping):
        bad("retry", "expected a mapping like {schedule: [5s, 5m, 30m], for: 24h}")
        return None, None
    for key in value:
        if key not in ("schedule", "for"):
            bad(f"retry.{key}", f"unknown key{did_you_mean(str(key), ('schedule', 'for'))}")
    schedule: tuple[float, ...] | None = None
    if "schedule" in value:
        raw = value["schedule"]
        if isinstance(raw, (str, int)) and not isinstance(raw, bool):
            raw = [raw]
        if not isinstance(raw, list):
            bad("retry.schedule", f"expected a list of durations like [5s, 5m], got {raw!r}")
        else:
            schedule = tuple(
                _duration(d, "retry.schedule", bad, allow_zero=True).total_seconds() for d in raw
            )
    within = None
    if value.get("for") is not None:
        within = _duration(value["for"], "retry.for", bad, allow_zero=False).total_seconds()
    if schedule is None and within is None:
        bad("retry", "give a schedule, a for, or both")
    return schedule, within


_PAUSE_KEYS = ("after", "rate", "min_attempts", "window", "cool_down")


def _pause(value: Any, bad: Report) -> tuple[tuple[str, float | None], ...]:
    """``pause: {after: 3, rate: 50%, min_attempts: 10, window: 5m, cool_down: 30m}``: the
    circuit breaker of the hosts this rule sends to (``after: 0`` or ``rate: 0``: that
    test off)."""
    if not isinstance(value, Mapping):
        bad("pause", "expected a mapping like {after: 3, cool_down: 30m}")
        return ()
    out: list[tuple[str, float | None]] = []
    for key, raw in value.items():
        field = f"pause.{key}"
        if key not in _PAUSE_KEYS:
            bad(field, f"unknown key{did_you_mean(str(key), _PAUSE_KEYS)}")
        elif key in ("window", "cool_down"):
            d = _duration(raw, field, bad, allow_zero=key == "cool_down")
            out.append((key, d.total_seconds()))
        elif key == "rate":
            text = str(raw).strip()
            try:
                rate = float(text.removesuffix("%")) / (100 if text.endswith("%") else 1)
            except ValueError:
                rate = -1.0
            if not 0 <= rate <= 1:
                bad(field, f"{raw!r} is not a failure share; write 0.7 or 70%")
            out.append((key, rate or None))
        elif isinstance(raw, bool) or not isinstance(raw, int) or raw < 0:
            bad(field, f"expected a whole number, got {raw!r}")
        else:
            out.append((key, float(raw) if raw else None))
    return tuple(out)


def alert_targets(value: Any, source: str) -> tuple[tuple[str, str | None], ...]:
    """The top-level ``alerts:`` of a rules file: webhook URLs (``- https://...`` or
    ``- {url: https://..., secret: "{env:NAME}"}``) as (url, secret variable) pairs."""
    items = value if isinstance(value, list) else [value]
    out: list[tuple[str, str | None]] = []
    problems: list[str] = []
    for i, item in enumerate(items):
        where = f"{source}: alerts #{i + 1}"
        url, secret = (
            (item.get("url"), item.get("secret"))
            if isinstance(item, Mapping)
            else (
                item,
                None,
            )
        )
        if isinstance(item, Mapping):
            for key in item:
                if key not in ("url", "secret"):
                    problems.append(
                        f"{where}, field {key!r}: unknown key"
                        + did_you_mean(str(key), ("url", "secret"))
                    )
        if not isinstance(url, str) or not re.match(r"https?://[^/\s]+", url.strip()):
            problems.append(f"{where}, field 'url': expected an http(s) URL, got {url!r}")
            continue
        name = None
        if secret is not None:
            m = re.fullmatch(r"\{env:([A-Za-z_][A-Za-z0-9_]*)\}", str(secret).strip())
            if m is None:
                problems.append(
                    f"{where}, field 'secret': the secret must come from the environment, "
                    "written secret: '{env:ALERT_SECRET}'"
                )
                continue
            name = m.group(1)
        out.append((url.strip(), name))
    if problems:
        raise RuleValidationError(problems)
    return tuple(out)


def _choice(value: Any, valid: tuple[str, ...], field: str, bad: Report) -> str:
    text = str(value).strip()
    if text in valid:
        return text
    if text.lower() in valid:
        return text.lower()
    bad(field, f"{value!r} is not valid{did_you_mean(text, valid)}")
    return valid[0]


def _ids(value: Any, field: str, bad: Report, *, allow_all: bool) -> tuple[str, ...] | None:
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
        text = as_written(v).strip()
        out.append(text[:-2] if type(v) is float and text.endswith(".0") else text)
    return tuple(out)


def _duration(value: Any, field: str, bad: Report, *, allow_zero: bool) -> timedelta:
    try:
        d = parse_duration(value)
    except OverflowError:
        bad(field, f"{value!r} is longer than 365 days")
        return timedelta(0)
    except ValueError:
        bad(field, f"{value!r} is not a duration; write a number with s, m, h or d, like 30s or 2m")
        return timedelta(0)
    if not allow_zero and d <= timedelta(0):
        bad(field, f"{value!r} must be more than 0s")
    if d > LONGEST:
        bad(field, f"{value!r} is longer than 365 days")
        return timedelta(0)
    return d


def _url(text: str, bad: Report, columns: list[str] | None) -> Template:
    try:
        t = parse_template(text)
    except TemplateError as exc:
        bad("url", _hinted(str(exc), text))
        return Template(text, (text,))
    head = t.parts[0] if t.parts and isinstance(t.parts[0], str) else ""
    authority = re.match(r"https?://([^/?#]*)", head, re.I)
    if authority is None or not authority.group(1):
        scheme = text.split(":", 1)[0] if ":" in text else text
        bad(
            "url",
            f"{text!r} is not an http(s) URL (starts with {scheme!r}); "
            "write https://host/path?… with a literal host",
        )
    elif len(t.parts) > 1 and authority.end() == len(head):
        # a macro right after the host could move the request elsewhere
        # (http://8.8.8.8{raw:x} with x = "@127.0.0.1/"): the host must end first
        bad(
            "url",
            f"{text!r}: a macro may not touch the host; write the host in full, then "
            "'/' or '?', then macros",
        )
    elif "@" in authority.group(1):
        bad(
            "url",
            "credentials in the URL (user:password@host) would be stored in the plan and "
            "the log; send them in a header instead, e.g. headers: {Authorization: "
            "'Basic {env:PARTNER_AUTH}'}",
        )
    if "#" in text and (hint := foreign_hint(text)) is not None:
        bad("url", hint)
    _check_columns(t, "url", bad, columns)
    return t


def _hinted(message: str, text: str) -> str:
    """A template error, with the platform whose syntax the text looks like."""
    hint = foreign_hint(text)
    return f"{message}; {hint}" if hint else message


def _check_columns(t: Template, field: str, bad: Report, columns: list[str] | None) -> None:
    for col in t.columns:
        _check_column(col, field, bad, columns)


def _check_column(col: str, field: str, bad: Report, columns: list[str] | None) -> None:
    """An unknown macro names the platform it looks like, else the closest column. Without
    the events' columns only near-misses of our own names are flagged (extra columns such
    as ``clickid`` are valid macros); the plan checks the rest against the events."""
    hint = foreign_hint("{" + col + "}")
    if columns is not None:
        if col not in columns:
            tail = f": {hint}" if hint else did_you_mean(col, columns)
            bad(field, f"unknown macro {{{col}}}{tail}")
    elif col not in CANONICAL and hint is None:
        near = closest(col, CANONICAL)
        if near is not None and near != col:
            bad(field, f"unknown macro {{{col}}} (did you mean {{{near}}}?)")


def _body(text: str, bad: Report, columns: list[str] | None) -> tuple[str, tuple[str, ...]]:
    env = body_environment(text)
    try:
        ast = env.parse(text)
    except jinja2.TemplateSyntaxError as exc:
        bad("body", f"invalid Jinja2 template at line {exc.lineno}: {exc.message}")
        return text, ()
    names = tuple(sorted(jinja2.meta.find_undeclared_variables(ast)))
    for col in names:
        _check_column(col, "body", bad, columns)
    try:
        rendered = env.from_string(text).render(dict.fromkeys(names, "1"))
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
