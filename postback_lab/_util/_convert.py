"""Vectorised converters from whatever a source column holds to the canonical dtypes:
text, numbers and UTC timestamps. Used by the events reader and the log importer."""

from __future__ import annotations

from collections.abc import Sequence

import polars as pl
from polars.expr.whenthen import ChainedThen, Then

# Tried in order; the first that parses a value wins. Offsets are honoured; naive times are
# read in the caller's time zone (UTC unless told). Slashed dates are month first, as US
# exports write them (CAKE, Everflow); day-first files pass their layout explicitly.
_WITH_OFFSET = ("%Y-%m-%dT%H:%M:%S%.f%z", "%Y-%m-%d %H:%M:%S%.f%z", "%Y-%m-%dT%H:%M%z")
_NAIVE = (
    "%Y-%m-%dT%H:%M:%S%.f",
    "%Y-%m-%d %H:%M:%S%.f",
    "%Y-%m-%dT%H:%M",
    "%Y-%m-%d %H:%M",
    "%Y/%m/%d %H:%M:%S",
    "%Y/%m/%d %H:%M",
    "%d.%m.%Y %H:%M:%S",
    "%d.%m.%Y %H:%M",
    "%m/%d/%Y %I:%M:%S %p",
    "%m/%d/%Y %I:%M %p",
    "%m/%d/%Y %H:%M:%S",
    "%m/%d/%Y %H:%M",
    "%b %d %Y %I:%M:%S %p",
    "%b %d %Y %I:%M %p",
    "%b %d, %Y %I:%M:%S %p",
    "%b %d, %Y %I:%M %p",
    "%b %d %Y %H:%M:%S",
    "%b %d %Y %H:%M",
    "%Y-%m-%d",
    "%Y/%m/%d",
    "%m/%d/%Y",
    "%d.%m.%Y",
)
#: a currency symbol or ISO code written next to an amount ("$", "US$", "€", "EUR")
_MONEY = r"[A-Z]{3}|[A-Z]{0,2}\$|[€£¥₽₹₩₺₴₫฿]|zł|kr|R\$"
EPOCH = "epoch"  # 9 to 13 digits: seconds or milliseconds
FORMATS = (*_WITH_OFFSET, *_NAIVE, EPOCH)
UTC_US = pl.Datetime("us", "UTC")


def text(expr: pl.Expr, dtype: pl.DataType, *, strip: bool = True) -> pl.Expr:
    """Any column as text (stripped unless told), empty -> null; ``7.0`` floats become ``7``."""
    if dtype == pl.String:
        out = expr
    elif dtype.is_float():
        out = expr.cast(pl.String).str.replace(r"\.0$", "")
    else:
        out = expr.cast(pl.String)
    if strip:
        out = out.str.strip_chars()
    return pl.when(out.str.len_bytes() > 0).then(out)


def is_naive(layout: str) -> bool:
    """A layout without an offset (its times are read in the caller's time zone)."""
    return layout != EPOCH and "%z" not in layout


def timestamp(
    expr: pl.Expr,
    dtype: pl.DataType,
    formats: tuple[str, ...] | None = None,
    *,
    tz: str = "UTC",
) -> pl.Expr:
    """Any column as a UTC ``Datetime('us')``; unparseable values become null.

    Text is tried against ``formats`` (all known layouts by default; ``formats_for`` picks
    the few a column actually uses, which saves a parse pass per unused layout). Times
    without an offset are read in ``tz`` (an IANA zone) and converted to UTC."""
    if isinstance(dtype, pl.Datetime):
        if dtype.time_zone is None:
            local = expr.dt.cast_time_unit("us").dt.replace_time_zone(tz, ambiguous="earliest")
            return local.dt.convert_time_zone("UTC")
        return expr.dt.cast_time_unit("us").dt.convert_time_zone("UTC")
    if isinstance(dtype, pl.Date):
        local = expr.cast(pl.Datetime("us")).dt.replace_time_zone(tz, ambiguous="earliest")
        return local.dt.convert_time_zone("UTC")
    if dtype.is_integer() or dtype.is_float():
        return _epoch(expr.cast(pl.Float64))
    s = _clean_time(text(expr, dtype))
    chosen = FORMATS if formats is None else formats
    tries = [
        s.str.to_datetime(
            f,
            strict=False,
            time_unit="us",
            time_zone=tz if is_naive(f) else "UTC",
            ambiguous="earliest",
        ).dt.convert_time_zone("UTC")
        for f in chosen
        if f != EPOCH
    ]
    if EPOCH in chosen:
        digits = s.str.contains(r"^\d{9,13}(\.\d+)?$")
        tries.append(pl.when(digits).then(_epoch(s.cast(pl.Float64, strict=False))))
    if not tries:
        return pl.lit(None, dtype=UTC_US)
    return pl.coalesce(tries) if len(tries) > 1 else tries[0]


def _clean_time(s: pl.Expr) -> pl.Expr:
    s = s.str.replace(r"(?i)z$", "+00:00").str.replace(r" UTC$", "+00:00")
    return s.str.replace(r"(:\d\d(?:\.\d+)?)([+-]\d\d)$", "${1}${2}00")  # '+02' -> '+0200'


def shapes(expr: pl.Expr) -> pl.Expr:
    """A value's layout: every digit replaced by 9 (``2024-01-02`` -> ``9999-99-99``)."""
    return expr.str.replace_all(r"\d", "9")


def formats_for(examples: list[str], first: Sequence[str] = ()) -> tuple[str, ...]:
    """The layouts (``first``, then FORMATS, in order) that parse at least one of
    ``examples``, one example per distinct shape of a column: values of one shape parse
    with the same layouts."""
    if not examples:
        return ()
    frame = pl.DataFrame({"v": examples}).select(_clean_time(pl.col("v")).alias("v"))
    used = []
    for f in dict.fromkeys([*first, *FORMATS]):
        if f == EPOCH:
            ok = frame.select(pl.col("v").str.contains(r"^\d{9,13}(\.\d+)?$").any()).item()
        else:
            ok = frame.select(
                pl.col("v")
                .str.to_datetime(f, strict=False, time_unit="us", time_zone="UTC")
                .is_not_null()
                .any()
            ).item()
        if ok:
            used.append(f)
    return tuple(used)


def _epoch(seconds_or_ms: pl.Expr) -> pl.Expr:
    """Unix time in seconds, or milliseconds when it is too large to be seconds."""
    us = (
        pl.when(seconds_or_ms.abs() > 1e11)
        .then(seconds_or_ms * 1_000)
        .otherwise(seconds_or_ms * 1_000_000)
    )
    return pl.from_epoch(us.round(0).cast(pl.Int64), time_unit="us").dt.replace_time_zone("UTC")


def number(expr: pl.Expr, dtype: pl.DataType, *, decimal_comma: bool = False) -> pl.Expr:
    """Any column as Float64; junk and non-finite values (``1e400``, ``NaN``) become null.

    Text like ``'12.50'``, ``' 7 '``, ``'1,250.00'`` (thousands separators), ``'12,5'``
    (a comma before one or two digits) and ``'1.250,00'`` (dots between thousands, then a
    decimal comma) parses, with a currency symbol or code before or after it as exports
    write money (``'$1,018.50'``, ``'1.018,50 €'``, ``'USD 18.00'``, ``'-$5'``);
    ``decimal_comma`` reads every comma as the decimal mark (``'1.250'`` is then 1250)."""
    if dtype.is_numeric():
        out = expr.cast(pl.Float64)
    else:
        t = text(expr, dtype).str.replace_all(r"[\s_'\u00a0\u202f]", "")
        t = t.str.replace(rf"^([-+]?)(?:{_MONEY})", "${1}").str.replace(rf"(?:{_MONEY})$", "")
        if decimal_comma:
            t = t.str.replace_all(".", "", literal=True).str.replace(",", ".", literal=True)
        else:
            t = (
                pl.when(t.str.contains(r"^[-+]?\d{1,3}(,\d{3})+(\.\d+)?$"))
                .then(t.str.replace_all(",", "", literal=True))
                .when(t.str.contains(r"^[-+]?\d{1,3}(\.\d{3})+,\d+$"))
                .then(t.str.replace_all(".", "", literal=True).str.replace(",", ".", literal=True))
                .when(t.str.contains(r"^[-+]?\d+,\d{1,2}$"))
                .then(t.str.replace(",", ".", literal=True))
                .otherwise(t)
            )
        out = t.cast(pl.Float64, strict=False)
    return pl.when(out.is_finite()).then(out)


def first_of(cases: Sequence[tuple[pl.Expr, pl.Expr]], otherwise: pl.Expr) -> pl.Expr:
    """The value of the first case whose condition holds (one chained ``when``), else
    ``otherwise``: how a row's first failing check names its reason."""
    if not cases:
        return otherwise
    (cond, value), *rest = cases
    chain: Then | ChainedThen = pl.when(cond).then(value)
    for cond, value in rest:
        chain = chain.when(cond).then(value)
    return chain.otherwise(otherwise)
