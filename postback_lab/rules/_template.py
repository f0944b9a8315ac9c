"""URL and header templates (``{name}``, ``{raw:name}`` and ``{env:NAME}`` macros) and
the sandboxed Jinja2 environment of bodies.

A template is parsed once into literal and macro parts; the plan renders the parts
vectorised. ``{env:NAME}`` stays in the plan as written and is resolved only at send
time, so a secret is never stored.
"""

from __future__ import annotations

import json
import os
import re
import secrets
import urllib.parse
import zoneinfo
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import jinja2
import jinja2.runtime
import jinja2.sandbox
import markupsafe

_MACRO = re.compile(r"\{([^{}]*)\}")
_ENV_NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_]*\Z")
_ENV = re.compile(r"\{env:([A-Za-z_][A-Za-z0-9_]*)\}")
#: filters a macro may carry, in the order they apply
FILTERS = ("tz", "format", "map", "default")


@dataclass(frozen=True)
class Macro:
    """One ``{...}`` in a template: ``kind`` is ``"encoded"``, ``"raw"`` or ``"env"``;
    ``filters`` are ``(name, argument)`` pairs such as ``("default", "none")``."""

    kind: str
    name: str
    filters: tuple[tuple[str, str], ...] = ()

    def filter(self, name: str) -> str | None:
        """The argument of filter ``name``, or None when the macro has none."""
        for k, v in self.filters:
            if k == name:
                return v
        return None

    @property
    def value_map(self) -> dict[str, str]:
        """``{status|map:approved=1,rejected=2}`` -> ``{"approved": "1", "rejected": "2"}``."""
        arg = self.filter("map")
        if arg is None:
            return {}
        pairs = (item.partition("=") for item in arg.split(","))
        return {k.strip(): v.strip() for k, _, v in pairs}

    @property
    def key(self) -> str:
        """What the rendered value depends on: the column and its filters."""
        return self.name + "".join(f"|{k}:{v}" for k, v in self.filters)

    def __str__(self) -> str:
        prefix = "" if self.kind == "encoded" else self.kind + ":"
        return "{" + prefix + self.key + "}"


Part = str | Macro


@dataclass(frozen=True)
class Template:
    """A parsed template: literal strings and macros, in order."""

    text: str
    parts: tuple[Part, ...]

    @property
    def macros(self) -> tuple[Macro, ...]:
        """The column macros (not ``env:``), in order."""
        return tuple(p for p in self.parts if isinstance(p, Macro) and p.kind != "env")

    @property
    def columns(self) -> tuple[str, ...]:
        """The events columns this template needs (not ``env:`` names), in order, unique."""
        return tuple(dict.fromkeys(m.name for m in self.macros))

    @property
    def required(self) -> tuple[str, ...]:
        """Columns that must have a value for the template to render: those used at least
        once without a ``default``."""
        return tuple(dict.fromkeys(m.name for m in self.macros if m.filter("default") is None))

    @property
    def env(self) -> tuple[str, ...]:
        """The ``{env:NAME}`` names, in order, unique."""
        return tuple(
            dict.fromkeys(p.name for p in self.parts if isinstance(p, Macro) and p.kind == "env")
        )


class TemplateError(ValueError):
    """A template cannot be parsed; the message says what is wrong."""


def parse_template(text: str) -> Template:
    """Split ``text`` into literals and macros; stray braces and bad names are errors."""
    parts: list[Part] = []
    pos = 0
    for m in _MACRO.finditer(text):
        literal = text[pos : m.start()]
        _check_literal(literal, text, pos)
        if literal:
            parts.append(literal)
        parts.append(_macro(m.group(1)))
        pos = m.end()
    tail = text[pos:]
    _check_literal(tail, text, pos)
    if tail:
        parts.append(tail)
    return Template(text, tuple(parts))


def _macro(inner: str) -> Macro:
    head, *filters = inner.split("|")
    head = head.strip()
    kind, sep, name = head.partition(":")
    if not sep:
        kind, name = "encoded", head
    elif kind.strip() not in ("raw", "env"):
        raise TemplateError(
            f"unknown macro prefix {kind.strip()!r} in {{{inner}}}: write {{name}}, "
            "{raw:name} or {env:NAME}, with filters after '|' such as "
            "{status|map:approved=1} or {occurred_at|format:%Y-%m-%d}"
        )
    kind, name = kind.strip(), name.strip()
    if not name:
        raise TemplateError(f"empty macro {{{inner}}}: a macro names one column, like {{payout}}")
    if kind == "env":
        if not _ENV_NAME.match(name):
            raise TemplateError(f"bad macro {{{inner}}}: an environment variable name")
        if filters:
            raise TemplateError(f"{{{inner}}}: {{env:NAME}} takes no filters")
        return Macro("env", name)
    return Macro(kind, name, tuple(_filter(f, inner) for f in filters))


def _filter(text: str, inner: str) -> tuple[str, str]:
    op, sep, arg = text.partition(":")
    op = op.strip().lower()
    if op not in FILTERS or (not sep and op != "default"):
        raise TemplateError(
            f"unknown filter {text.strip()!r} in {{{inner}}}: use map:a=1,b=2, "
            "format:%Y-%m-%d (timestamps), tz:Europe/Berlin or default:text"
        )
    if op == "map":
        for item in arg.split(","):
            k, eq, _ = item.partition("=")
            if not eq or not k.strip():
                raise TemplateError(f"{{{inner}}}: write value maps as map:approved=1,rejected=2")
    if op == "tz":
        try:
            zoneinfo.ZoneInfo(arg.strip())
        except (zoneinfo.ZoneInfoNotFoundError, ValueError):
            raise TemplateError(f"{{{inner}}}: unknown time zone {arg.strip()!r}") from None
        arg = arg.strip()
    if op == "format" and not arg:
        raise TemplateError(f"{{{inner}}}: format needs a layout, like format:%Y-%m-%d")
    return op, arg


def _check_literal(literal: str, text: str, offset: int) -> None:
    for ch in "{}":
        i = literal.find(ch)
        if i >= 0:
            raise TemplateError(
                f"stray {ch!r} at character {offset + i + 1}: macros are written {{name}}"
            )


class _BodySandbox(jinja2.sandbox.SandboxedEnvironment):
    """The sandbox every rule body renders in, with arithmetic bounded: ``{{ 9**999999 }}``
    or ``{{ 'x' * 10**9 }}`` is an error, not a hung process."""

    intercepted_binops = frozenset(["**", "*"])

    def call_binop(
        self, context: jinja2.runtime.Context, operator: str, left: Any, right: Any
    ) -> Any:
        if operator == "**" and isinstance(right, int) and abs(right) > 64:
            raise jinja2.exceptions.SecurityError(f"exponent {right} is too large (at most 64)")
        if operator == "*":
            size = [len(x) for x in (left, right) if isinstance(x, (str, list, tuple))]
            times = [x for x in (left, right) if isinstance(x, int)]
            if size and times and size[0] * abs(times[0]) > 100_000:
                raise jinja2.exceptions.SecurityError("a repeated text longer than 100,000")
        return super().call_binop(context, operator, left, right)


def _json_text(value: Any) -> Any:
    """Every ``{{ value }}`` of a JSON body is escaped for a JSON string, so a value with
    quotes or newlines cannot change the document (``| tojson`` output is left alone)."""
    if isinstance(value, markupsafe.Markup) or value is None:
        return value
    return json.dumps(str(value), ensure_ascii=False)[1:-1]


#: the environment of text bodies: sandboxed, strict about undefined names
BODY_ENV = _BodySandbox(
    undefined=jinja2.StrictUndefined, autoescape=False, keep_trailing_newline=True
)
#: the environment of JSON bodies (text starting with ``{`` or ``[``): values JSON-escaped
JSON_BODY_ENV = _BodySandbox(
    undefined=jinja2.StrictUndefined,
    autoescape=False,
    keep_trailing_newline=True,
    finalize=_json_text,
)


def is_json_body(text: str) -> bool:
    return text.lstrip().startswith(("{", "["))


def body_environment(text: str) -> jinja2.Environment:
    """The Jinja2 environment a body template renders in (JSON-escaping for JSON)."""
    return JSON_BODY_ENV if is_json_body(text) else BODY_ENV


# -- secrets ------------------------------------------------------------------------------
# A template's {env:NAME} is kept in the plan as written and filled in only when sending.
# Where it stands is recorded as (offset, name) spans, so text that came from event data
# and happens to read "{env:X}" is sent as it is, never expanded.

Spans = list[tuple[int, str]]


def env_names(text: str) -> list[str]:
    """The ``{env:NAME}`` names written in ``text``."""
    return _ENV.findall(text)


def body_with_env_markers(text: str) -> tuple[str, str]:
    """``text`` with each ``{env:NAME}`` replaced by a marker no event value can contain
    (a random nonce between NUL bytes), and the marker's prefix for ``env_spans``."""
    nonce = "\x00" + secrets.token_hex(8) + ":"
    return _ENV.sub(lambda m: nonce + m.group(1) + "\x00", text), nonce


def env_spans(rendered: str, nonce: str) -> tuple[str, Spans]:
    """A body rendered with ``body_with_env_markers``: the text with ``{env:NAME}`` back in
    place of the markers, and where each one stands."""
    out: list[str] = []
    spans: Spans = []
    pos = 0
    length = 0
    while (i := rendered.find(nonce, pos)) >= 0:
        out.append(rendered[pos:i])
        length += i - pos
        end = rendered.index("\x00", i + len(nonce))
        name = rendered[i + len(nonce) : end]
        placeholder = "{env:" + name + "}"
        spans.append((length, name))
        out.append(placeholder)
        length += len(placeholder)
        pos = end + 1
    out.append(rendered[pos:])
    return "".join(out), spans


def fill_env(text: str, spans: Spans, environ: Mapping[str, str], how: str) -> str:
    """``text`` with the secrets at ``spans`` filled in: ``how`` is ``"url"`` (the value
    percent-encoded as a query value or path segment), ``"json"`` (escaped for a JSON
    string), ``"header"`` (as it is; CR and LF refused) or ``"text"``. A span that does
    not read ``{env:NAME}`` means a damaged plan: ValueError. A missing variable: KeyError."""
    for start, name in sorted(spans, reverse=True):
        placeholder = "{env:" + name + "}"
        if text[start : start + len(placeholder)] != placeholder:
            raise ValueError(f"the plan's secret position for {name} does not match its text")
        value = environ[name]
        if how == "url":
            value = urllib.parse.quote(value, safe="")
        elif how == "json":
            value = json.dumps(value, ensure_ascii=False)[1:-1]
        elif how == "header" and ("\r" in value or "\n" in value):
            raise ValueError(f"the environment variable {name} holds a line break")
        text = text[:start] + value + text[start + len(placeholder) :]
    return text


def resolve_env(text: str, environ: Mapping[str, str] | None = None) -> str:
    """Replace every ``{env:NAME}`` written in ``text`` (a template's own text, never
    rendered event data) with its value; a missing variable is a KeyError."""
    env = os.environ if environ is None else environ

    def sub(m: re.Match[str]) -> str:
        name = m.group(1)
        if name not in env:
            raise KeyError(name)
        return env[name]

    return _ENV.sub(sub, text)
