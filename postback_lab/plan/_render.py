"""Vectorised macro rendering: values as text (the rules' rendering rules) and
percent-encoded.

Values are percent-encoded by DuckDB's ``url_encode`` (which escapes every byte outside
``A-Z a-z 0-9 - . _ ~``, exactly the contract); a column none of whose values needs it is
left as it is.
"""

from __future__ import annotations

from decimal import Decimal

import polars as pl

from .._errors import RuleValidationError
from .._util import query
from ..rules import Macro

UNSAFE = r"[^A-Za-z0-9._~-]"


def as_text(s: pl.Series) -> pl.Series:
    """A column rendered as macro text: ints plainly, decimals without exponent or trailing
    zeros, timestamps ISO 8601 UTC with ``Z``; nulls stay null."""
    dt = s.dtype
    if dt == pl.String:
        return s
    if dt == pl.Boolean:
        return s.cast(pl.String).str.to_lowercase()
    if dt.is_integer():
        return s.cast(pl.String)
    if dt.is_float():
        text = s.cast(pl.String)
        odd = text.str.contains("[eE]|inf|NaN")
        if odd.any():
            distinct = text.filter(odd).unique()
            plain = [_plain_float(v) for v in distinct.to_list()]
            text = text.replace(distinct, pl.Series(plain, dtype=pl.String))
        return text.str.replace(r"\.0$", "")
    if isinstance(dt, pl.Decimal):
        return s.cast(pl.String).str.replace(r"(\.\d*?)0+$", "$1").str.replace(r"\.$", "")
    if isinstance(dt, pl.Datetime):
        utc = s.dt.convert_time_zone("UTC") if dt.time_zone else s
        return utc.dt.strftime("%Y-%m-%dT%H:%M:%S%.fZ")
    if isinstance(dt, pl.Date):
        return s.dt.strftime("%Y-%m-%d")
    return s.cast(pl.String)


def _plain_float(text: str) -> str | None:
    if text in ("NaN", "inf", "-inf"):
        return None
    out = format(Decimal(text), "f")
    return out.rstrip("0").rstrip(".") if "." in out else out


def url_encode(text: pl.Series) -> pl.Series:
    """Percent-encode every value for a query value or path segment (UTF-8, space %20).

    Values that need it are encoded once per distinct value and mapped back when they
    repeat (a few sub ids, statuses); when most are distinct (timestamps, free text) the
    whole column goes through DuckDB at once, which costs less than mapping back."""
    needs = text.filter(text.str.contains(UNSAFE))
    if needs.len() == 0:
        return text
    if needs.len() > 10_000:
        sample = needs.gather_every(max(1, needs.len() // 2_000))
        if sample.n_unique() * 2 > sample.len():  # mostly distinct
            return query("SELECT url_encode(v) AS e FROM t", t=text.to_frame("v"))["e"].alias(
                text.name
            )
    distinct = needs.unique()
    encoded = query("SELECT url_encode(v) AS e FROM needs", needs=distinct.to_frame("v"))["e"]
    return text.replace(distinct, encoded)


def macro_text(s: pl.Series, macro: Macro, *, where: str = "") -> pl.Series:
    """A column rendered for one macro: as text, through the macro's filters (``tz`` and
    ``format`` for timestamps, ``map`` of values, ``default`` for missing ones), and
    percent-encoded when the macro is ``{name}`` rather than ``{raw:name}``."""
    fmt, tz = macro.filter("format"), macro.filter("tz")
    if fmt is not None or tz is not None:
        if not isinstance(s.dtype, pl.Datetime):
            raise RuleValidationError(
                [
                    f"{where}macro {macro}: format and tz apply to timestamps, and "
                    f"{macro.name!r} holds {s.dtype}"
                ]
            )
        zoned = s.dt.convert_time_zone(tz or "UTC") if s.dtype.time_zone else s
        if fmt is None:
            text = zoned.dt.strftime("%Y-%m-%dT%H:%M:%S%.f%:z")
        else:
            try:
                text = zoned.dt.strftime(fmt)
            except pl.exceptions.ComputeError as exc:
                raise RuleValidationError(
                    [f"{where}macro {macro}: {fmt!r} is not a time layout ({exc})"]
                ) from None
    else:
        text = as_text(s)
    mapping = macro.value_map
    if mapping:
        text = text.replace(list(mapping), list(mapping.values()))
    default = macro.filter("default")
    if default is not None:
        text = text.fill_null(default)
    return url_encode(text) if macro.kind == "encoded" else text
