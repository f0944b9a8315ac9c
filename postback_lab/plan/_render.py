"""Vectorised macro rendering: values as text (the rules' rendering rules) and
percent-encoded.

Values are percent-encoded by DuckDB's ``url_encode`` (which escapes every byte outside
``A-Z a-z 0-9 - . _ ~``, exactly the contract); a column none of whose values needs it is
left as it is. ``{raw:name}`` values in a URL keep the characters a URL may hold (they are
URL parts already) and only what cannot stand in a URL is escaped (``url_safe``).
"""

from __future__ import annotations

import re
import urllib.parse
from decimal import Decimal

import polars as pl

from .._errors import RuleValidationError
from .._util import query
from ..rules import Macro

#: the kind of a ``{raw:name}`` macro in a URL (headers and bodies take raw values as
#: they are)
URL_RAW = "url-raw"
UNSAFE = r"[^A-Za-z0-9._~-]"
#: distinct values to encode up to which Python encodes them rather than DuckDB
PYTHON_ENCODES = 1_000
#: what a ``{raw:name}`` value keeps in a URL besides ``A-Z a-z 0-9 - . _ ~``: RFC 3986's
#: other delimiters and ``%`` (a value that is already a URL part, escapes and all), all
#: but ``#`` (on the wire the URL would end there) and ``[ ]`` (only for IPv6 hosts)
RAW_KEEP = "!$&'()*+,;=:/?@%"
#: a raw value holding any of these needs escaping: a character outside the URL's set, or
#: a ``%`` that does not start an escape (``100% off``), or a ``.``/``..`` segment (a
#: client would resolve it away: the bytes on the wire would not be the plan's URL)
RAW_UNSAFE = (
    r"[^A-Za-z0-9._~!$&'()*+,;=:/?@%-]|%([^0-9A-Fa-f]|[0-9A-Fa-f]([^0-9A-Fa-f]|$)|$)"
    r"|(^|/)\.\.?(/|\?|$)"
)
_LONE_PERCENT = re.compile(r"%(?![0-9A-Fa-f]{2})")
_DOT_SEGMENT = re.compile(r"(?:(?<=/)|^)(\.\.?)(?=/|\?|$)")


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
    if distinct.len() <= PYTHON_ENCODES:
        # a DuckDB query costs ~2 ms however small; quote() is DuckDB's url_encode for
        # these (the same unreserved set, UTF-8, upper-case hex: a property test checks)
        quoted = [urllib.parse.quote(v, safe="") for v in distinct.to_list()]
        encoded = pl.Series("e", quoted, dtype=pl.String)
    else:
        encoded = query("SELECT url_encode(v) AS e FROM needs", needs=distinct.to_frame("v"))["e"]
    return text.replace(distinct, encoded)


def raw_url_text(value: str) -> str:
    """One ``{raw:name}`` value as it stands in a URL: space, ``#``, control characters,
    non-ASCII (as UTF-8), ``"<>[]\\^`{|}`` and a ``%`` that starts no escape are
    percent-encoded, and so are the dots of a ``.`` or ``..`` segment (``%2E``), which a
    client would resolve away; everything a URL may hold stays as written (``a=1&b=2``,
    ``%20``)."""
    out = urllib.parse.quote(_LONE_PERCENT.sub("%25", value), safe=RAW_KEEP)
    return _DOT_SEGMENT.sub(lambda m: m.group(1).replace(".", "%2E"), out)


def url_safe(text: pl.Series) -> pl.Series:
    """``raw_url_text`` of every value, computed once per distinct value that needs it
    (most raw values need nothing and are left as they are)."""
    needs = text.filter(text.str.contains(RAW_UNSAFE))
    if needs.len() == 0:
        return text
    distinct = needs.unique()
    escaped = pl.Series([raw_url_text(v) for v in distinct.to_list()], dtype=pl.String)
    return text.replace(distinct, escaped)


def macro_text(s: pl.Series, macro: Macro, *, where: str = "") -> pl.Series:
    """A column rendered for one macro: as text, through the macro's filters (``tz`` and
    ``format`` for timestamps, ``map`` of values, ``default`` for missing ones), and
    percent-encoded when the macro is ``{name}``; a ``{raw:name}`` of a URL (kind
    ``url-raw``) escapes only what cannot stand in a URL (``url_safe``)."""
    fmt, tz = macro.filter("format"), macro.filter("tz")
    shown = Macro("raw", macro.name, macro.filters) if macro.kind == URL_RAW else macro
    if fmt is not None or tz is not None:
        if not isinstance(s.dtype, pl.Datetime):
            raise RuleValidationError(
                [
                    f"{where}macro {shown}: format and tz apply to timestamps, and "
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
                    [f"{where}macro {shown}: {fmt!r} is not a time layout ({exc})"]
                ) from None
    else:
        text = as_text(s)
    mapping = macro.value_map
    if mapping:
        text = text.replace(list(mapping), list(mapping.values()))
    default = macro.filter("default")
    if default is not None:
        text = text.fill_null(default)
    if macro.kind == "encoded":
        return url_encode(text)
    return url_safe(text) if macro.kind == URL_RAW else text
