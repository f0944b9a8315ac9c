"""Small text helpers shared by every layer."""

from __future__ import annotations


def first_line(exc: BaseException) -> str:
    """The first line of an exception's message (its class name when it has none): what
    a one-sentence error shows of a dependency's multi-line message."""
    text = str(exc).strip()
    return text.splitlines()[0] if text else type(exc).__name__


def quote_ident(name: str) -> str:
    """A (possibly dotted) SQL identifier, each part double-quoted."""
    return ".".join('"' + part.replace('"', '""') + '"' for part in name.split("."))
