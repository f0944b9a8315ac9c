"""URL and header templates (``{name}``, ``{raw:name}`` and ``{env:NAME}`` macros) and
the sandboxed Jinja2 environment of bodies.

A template is parsed once into literal and macro parts; the plan renders the parts
vectorised. ``{env:NAME}`` stays in the plan as written and is resolved only at send
time, so a secret is never stored.
"""

from __future__ import annotations

import os
import re
from collections.abc import Mapping
from dataclasses import dataclass

import jinja2
import jinja2.sandbox

_MACRO = re.compile(r"\{([^{}]*)\}")
_NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_]*\Z")
_ENV = re.compile(r"\{env:([A-Za-z_][A-Za-z0-9_]*)\}")

#: the environment every rule body renders in: sandboxed, strict about undefined names
BODY_ENV = jinja2.sandbox.SandboxedEnvironment(
    undefined=jinja2.StrictUndefined, autoescape=False, keep_trailing_newline=True
)


@dataclass(frozen=True)
class Macro:
    """One ``{...}`` in a template: ``kind`` is ``"encoded"``, ``"raw"`` or ``"env"``."""

    kind: str
    name: str

    def __str__(self) -> str:
        return "{" + ("" if self.kind == "encoded" else self.kind + ":") + self.name + "}"


Part = str | Macro


@dataclass(frozen=True)
class Template:
    """A parsed template: literal strings and macros, in order."""

    text: str
    parts: tuple[Part, ...]

    @property
    def columns(self) -> tuple[str, ...]:
        """The events columns this template needs (not ``env:`` names), in order, unique."""
        seen: dict[str, None] = {}
        for p in self.parts:
            if isinstance(p, Macro) and p.kind != "env":
                seen.setdefault(p.name, None)
        return tuple(seen)


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
    kind, sep, name = inner.strip().partition(":")
    if not sep:
        kind, name = "encoded", kind
    kind = kind.strip()
    name = name.strip()
    if kind not in ("encoded", "raw", "env"):
        raise TemplateError(
            f"unknown macro prefix in {{{inner}}}: use {{name}}, {{raw:name}} or {{env:NAME}}"
        )
    if not _NAME.match(name):
        raise TemplateError(f"bad macro {{{inner}}}: a macro names one column, like {{payout}}")
    return Macro(kind, name)


def _check_literal(literal: str, text: str, offset: int) -> None:
    for ch in "{}":
        i = literal.find(ch)
        if i >= 0:
            raise TemplateError(
                f"stray {ch!r} at character {offset + i + 1}: macros are written {{name}}"
            )


def env_names(text: str) -> list[str]:
    """The ``{env:NAME}`` names used in ``text``."""
    return _ENV.findall(text)


def resolve_env(text: str, environ: Mapping[str, str] | None = None) -> str:
    """Replace every ``{env:NAME}`` with its value; a missing variable is a KeyError."""
    env = os.environ if environ is None else environ

    def sub(m: re.Match[str]) -> str:
        name = m.group(1)
        if name not in env:
            raise KeyError(name)
        return env[name]

    return _ENV.sub(sub, text)
