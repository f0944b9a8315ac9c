"""The expressions that render a rule's plan fields from the macro texts of the rows that
fire it: the URL (``concat_str`` of literal parts and pre-rendered macro columns), the
headers (a JSON object), the Jinja2 body (the only per-row Python), the host, and where
the rule's own ``{env:NAME}`` macros stand in each, so only they are filled in when
sending. ``_build`` orchestrates; this module only says how one rule renders."""

from __future__ import annotations

import json
import re

import polars as pl

from ..rules import (
    Macro,
    Rule,
    Template,
    body_environment,
    body_with_env_markers,
    env_names,
    env_spans,
)
from ._render import URL_RAW


def host_of(t: Template) -> str:
    head = t.parts[0] if t.parts and isinstance(t.parts[0], str) else ""
    m = re.match(r"https?://(?:[^@/?#]*@)?([^/?#]+)", head, re.I)
    return m.group(1).lower() if m else ""


def column_of(m: Macro) -> str:
    """The pre-rendered column of a macro: its text after filters, encoded, made safe for
    a URL (a URL's raw macro) or as it is."""
    prefix = {"encoded": "__e_", URL_RAW: "__u_"}.get(m.kind, "__t_")
    return prefix + m.key


def as_raw(p: str | Macro) -> str | Macro:
    return Macro("raw", p.name, p.filters) if isinstance(p, Macro) and p.kind == "encoded" else p


def url_part(p: str | Macro) -> str | Macro:
    """A URL's ``{raw:name}`` keeps what a URL may hold and escapes the rest."""
    return Macro(URL_RAW, p.name, p.filters) if isinstance(p, Macro) and p.kind == "raw" else p


def part_expr(p: str | Macro) -> pl.Expr:
    if isinstance(p, str):
        return pl.lit(p)
    if p.kind == "env":
        return pl.lit(str(p))  # resolved at send time, never stored
    return pl.col(column_of(p))


def field_parts(rule: Rule) -> list[tuple[str, tuple[str | Macro, ...]]]:
    """Each templated field of a rule as it renders: the URL encoded, headers raw."""
    out = [("url", tuple(url_part(p) for p in rule.url.parts))]
    out += [(f"header:{k}", tuple(as_raw(p) for p in t.parts)) for k, t in rule.headers]
    return out


def render_parts(parts: tuple[str | Macro, ...]) -> pl.Expr:
    return pl.concat_str([part_expr(p) for p in parts]) if parts else pl.lit("")


def length_expr(p: str | Macro) -> pl.Expr:
    if isinstance(p, str):
        return pl.lit(len(p), dtype=pl.UInt32)
    if p.kind == "env":
        return pl.lit(len(str(p)), dtype=pl.UInt32)
    return pl.col(column_of(p)).str.len_chars()


def env_entries(rule: Rule) -> pl.Expr | None:
    """``["url",12,"TOKEN"],…``: where the URL's and headers' own ``{env:NAME}`` macros
    stand in the rendered text (offsets in characters), or None when they have none."""
    entries: list[pl.Expr] = []
    for field, parts in field_parts(rule):
        for i, p in enumerate(parts):
            if isinstance(p, Macro) and p.kind == "env":
                offset = pl.sum_horizontal([length_expr(q) for q in parts[:i]]) if i else pl.lit(0)
                entries.append(
                    pl.format(
                        "[" + json.dumps(field) + ",{}," + json.dumps(p.name) + "]",
                        offset.cast(pl.UInt32),
                    )
                )
    return pl.concat_str(entries, separator=",") if entries else None


def headers_expr(rule: Rule) -> pl.Expr:
    if not rule.headers:
        return pl.lit(None, dtype=pl.String)
    if all(not t.columns for _, t in rule.headers):
        return pl.lit(json.dumps({k: t.text for k, t in rule.headers}))
    fields = [render_parts(parts).alias(f[len("header:") :]) for f, parts in field_parts(rule)[1:]]
    return pl.struct(fields).struct.json_encode()


def render_bodies(rule: Rule, rows: pl.DataFrame) -> tuple[pl.Series, pl.Series, pl.Series]:
    """Render the Jinja2 body per row (values JSON-escaped in a JSON body); returns
    (body, ok, env entries) where ok is False for rows whose body is not valid JSON (they
    are not fired and explain counts them) and the entries say where the body's own
    ``{env:NAME}`` macros stand."""
    assert rule.body is not None
    marked, nonce = body_with_env_markers(rule.body)
    has_env = bool(env_names(rule.body))
    template = body_environment(rule.body).from_string(marked)
    cols = [f"__t_{c}" for c in rule.body_columns]
    is_json = rule.body.lstrip().startswith(("{", "["))
    out, ok, where = [], [], []
    for values in rows.select(cols).iter_rows() if cols else ([()] * rows.height):
        text = template.render(dict(zip(rule.body_columns, values, strict=True)))
        spans: list[tuple[int, str]] = []
        if has_env:
            text, spans = env_spans(text, nonce)
        good = True
        if is_json:
            try:
                json.loads(text)
            except json.JSONDecodeError:
                good = False
        out.append(text)
        ok.append(good)
        where.append(",".join(f'["body",{o},{json.dumps(n)}]' for o, n in spans) or None)
    return (
        pl.Series("body", out, dtype=pl.String),
        pl.Series("ok", ok, dtype=pl.Boolean),
        pl.Series("__env_body", where, dtype=pl.String),
    )


def macros_of(rule: Rule) -> dict[str, Macro]:
    """The rendered columns a rule's URL, headers and body read, each with its macro."""
    needed: dict[str, Macro] = {}
    for _, parts in field_parts(rule):
        for p in parts:
            if isinstance(p, Macro) and p.kind != "env":
                needed.setdefault(column_of(p), p)
    for c in rule.body_columns:
        needed.setdefault(column_of(Macro("raw", c)), Macro("raw", c))
    return needed
