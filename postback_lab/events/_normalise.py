"""Raw source columns -> the canonical events frame, splitting off rows to quarantine."""

from __future__ import annotations

from collections.abc import Mapping

import polars as pl

from .._errors import EventsError
from .._util import (
    FORMATS,
    first_line,
    first_of,
    formats_for,
    is_naive,
    number,
    shapes,
    text,
    timestamp,
)
from ._columns import resolve_columns
from ._events import QUARANTINE_SCHEMA
from ._options import ReadOptions
from ._schema import CANONICAL, EVENT_TYPE_ALIASES, SCHEMA, STATUS_ALIASES
from ._sources import LINE, Source

_REASON = "__reason"
_RAW = "__raw_"
_GIVEN = "__given_"
_FLAG = "__flagged"
#: the reason of rows whose status the caller asked to ignore: left out and counted
IGNORED = "__ignored_status"
_TRUE = ("true", "1", "yes", "y", "t")
_BATCH_ROWS = 200_000
_CHECKED_RAW = ("occurred_at", "event_type", "status", "payout", "revenue")


def status(
    expr: pl.Expr, dtype: pl.DataType, spellings: Mapping[str, str] | None = None
) -> pl.Expr:
    """Status aliases (``declined`` -> ``rejected``, a platform's own spellings such as
    Affise's ``1``/``3``) to the three canonical values."""
    low = text(expr, dtype).str.to_lowercase()
    aliases = {**STATUS_ALIASES, **(spellings or {})}
    return low.replace_strict(aliases, default=None, return_dtype=pl.String)


def event_type(expr: pl.Expr, dtype: pl.DataType) -> pl.Expr:
    """Event type aliases (``clicks``, ``sale`` …) to the four canonical values."""
    low = text(expr, dtype).str.to_lowercase()
    return low.replace_strict(EVENT_TYPE_ALIASES, default=None, return_dtype=pl.String)


def normalise(src: Source, options: ReadOptions) -> tuple[pl.DataFrame, pl.DataFrame, list[str]]:
    """The canonical frame of one source, its quarantine (source, line, reason, raw) and
    notes on how it was read (the preset guessed, naive times read as UTC)."""
    try:
        schema = src.lazy.collect_schema()
    except (pl.exceptions.PolarsError, OSError) as exc:
        raise EventsError(f"{src.label}: cannot read ({first_line(exc)})") from exc
    found = [c for c in schema.names() if c != LINE]
    preset, note = options.preset_for(found)
    notes = [f"{src.label}: {note}"] if note else []
    try:
        mapping, renames, fallbacks = resolve_columns(src.label, found, options.rename, preset)
    except EventsError as exc:
        if note and preset is None:  # say that auto recognised nothing
            raise EventsError(f"{exc} ({note})") from None
        raise
    used = set(mapping.values()) | set(renames) | {c for cs in fallbacks.values() for c in cs}
    explicit = set(options.rename) | set(options.rename.values())
    pair = preset.pair_headers(found) if preset is not None else None
    if pair is not None and "transaction_id" in explicit:
        pair = None
    forced_type = options.event_type
    decimal_comma = (
        options.decimal_comma
        if options.decimal_comma is not None
        else bool(preset and preset.decimal_comma)
    )

    spellings = {**(preset.statuses if preset else {}), **options.status_map}
    labelled = preset.labelled_ids if preset is not None else ()

    def names(col: str) -> list[str]:
        """The headers that fill ``col``, in order: a blank cell in one falls back on the
        next (a blank Disposition never hides a filled Conversion Status)."""
        return [mapping[col], *fallbacks.get(col, [])]

    def texts(col: str, strip: bool = True) -> pl.Expr:
        parts = [text(pl.col(n), schema[n], strip=strip) for n in names(col)]
        return pl.coalesce(parts) if len(parts) > 1 else parts[0]

    exprs: list[pl.Expr] = []
    for col, dtype in SCHEMA.items():
        name = mapping.get(col)
        if name is None:
            exprs.append(pl.lit(None, dtype=dtype).alias(col))
            continue
        rdt = schema[name]
        if col == "occurred_at":
            naive, times = False, []
            for n in names(col):
                if options.date_format is not None:
                    layouts: tuple[str, ...] | None = (options.date_format,)
                else:
                    layouts = _time_formats(
                        src, n, schema[n], preset.date_formats if preset else ()
                    )
                times.append(timestamp(pl.col(n), schema[n], layouts, tz=options.timezone))
                if n == name:
                    naive = (
                        rdt == pl.String and any(is_naive(f) for f in (layouts or FORMATS))
                    ) or (isinstance(rdt, pl.Datetime) and rdt.time_zone is None)
            e = pl.coalesce(times) if len(times) > 1 else times[0]
            if naive and options.timezone == "UTC":
                notes.append(
                    f"{src.label}: times in {name!r} carry no time zone and were read as UTC "
                    "(pass timezone=..., on the command line --timezone, if they are local)"
                )
        elif col in ("payout", "revenue"):
            amounts = [
                number(pl.col(n), schema[n], decimal_comma=decimal_comma) for n in names(col)
            ]
            e = pl.coalesce(amounts) if len(amounts) > 1 else amounts[0]
        elif col == "status":
            e = status(texts(col), pl.String(), spellings)
        elif col == "event_type":
            e = event_type(texts(col), pl.String())
        else:  # sub ids are the partner's values: kept exactly, only empty means missing
            e = texts(col, strip=not col.startswith("sub"))
            if col in labelled:  # '(101) Crypto App Install' -> '101'
                e = pl.coalesce(e.str.extract(r"^\(\s*([^()\s]+)\s*\)"), e)
        exprs.append(e.alias(col))
    if pair is not None:  # Keitaro: the conversion is the click and its number within it
        click = text(pl.col(pair[0]), schema[pair[0]])
        nth = text(pl.col(pair[1]), schema[pair[1]])
        exprs[CANONICAL.index("transaction_id")] = (
            pl.when(nth.is_not_null())
            .then(pl.concat_str(click, pl.lit(":"), nth))
            .otherwise(click)
            .alias("transaction_id")
        )
        if "transaction_id" not in mapping:
            mapping["transaction_id"] = pair[0]
    flag = preset.header(preset.event_flag, found) if preset and preset.event_flag else None
    if forced_type is not None:
        exprs[CANONICAL.index("event_type")] = pl.lit(forced_type).alias("event_type")
    elif "event_type" not in mapping and flag is not None:
        exprs[CANONICAL.index("event_type")] = (
            pl.when(text(pl.col(flag), schema[flag]).str.to_lowercase().is_in(_TRUE))
            .then(pl.lit("event"))
            .otherwise(pl.lit("conversion"))
            .alias("event_type")
        )
    elif "event_type" not in mapping:
        exprs[CANONICAL.index("event_type")] = pl.lit("conversion").alias("event_type")
    if "status" not in mapping and preset is not None and preset.default_status is not None:
        exprs[CANONICAL.index("status")] = pl.lit(preset.default_status).alias("status")
    extras = [pl.col(c) for c in found if c not in used]
    extras += [pl.col(c).alias(new) for c, new in renames.items()]

    checked = [c for c in _CHECKED_RAW if c in mapping]
    ignore = options.ignore_status if "status" in mapping else ()
    # the scan computes the canonical columns and one cheap flag per row; the reasons
    # (raw cells as text, formatted messages) only for the flagged rows, afterwards
    givens = [_given(names(c), schema, c) for c in ("payout", "revenue") if c in mapping]
    raws = [_raw(names("status"), "status")] if ignore else []
    frame_lazy = (
        src.lazy.select(pl.col(LINE), *exprs, *extras, *givens, *raws)
        .with_columns(_clicks_approved())
        .with_columns(_flag(mapping, forced_type, ignore).alias(_FLAG))
        .drop([c.meta.output_name() for c in (*givens, *raws)])
    )
    good, flagged = _collect(src.label, frame_lazy)
    rejected = src.rejected if src.rejected is not None else pl.DataFrame(schema=QUARANTINE_SCHEMA)
    if flagged.height == 0:
        return good, rejected, notes
    bad = (
        src.lazy.join(flagged.lazy(), on=LINE, how="semi")
        .select(
            pl.col(LINE),
            *exprs,
            *[_given(names(c), schema, c) for c in checked],
            *[_raw(names(c), c) for c in checked],
            pl.struct(pl.all().exclude(LINE)).struct.json_encode().alias("raw"),
        )
        .with_columns(_clicks_approved())
        .select(LINE, _reason(mapping, forced_type, ignore).alias(_REASON), "raw")
        .collect()
    )
    if bad.height != flagged.height or bad[_REASON].null_count():  # pragma: no cover
        raise AssertionError(f"{src.label}: a flagged row has no reason (a reader bug)")
    ignored = bad.filter(pl.col(_REASON) == IGNORED)
    if ignored.height:
        bad = bad.filter(pl.col(_REASON) != IGNORED)
        notes.append(
            f"{src.label}: {ignored.height:,} row{'s' if ignored.height != 1 else ''} with an "
            f"ignored status ({', '.join(options.ignore_status)}) left out"
        )
    if bad.height == 0:
        return good, rejected, notes
    quarantine = bad.select(
        pl.lit(src.label).alias("source"),
        pl.col(LINE).cast(pl.Int64).alias("line"),
        pl.col(_REASON).alias("reason"),
        "raw",
    )
    return good, pl.concat([rejected, quarantine]).sort("line"), notes


def _clicks_approved() -> pl.Expr:
    """Clicks and impressions rarely carry a status: they count as approved."""
    return (
        pl.when(pl.col("status").is_null() & pl.col("event_type").is_in(["click", "impression"]))
        .then(pl.lit("approved"))
        .otherwise(pl.col("status"))
        .alias("status")
    )


def _collect(label: str, lazy: pl.LazyFrame) -> tuple[pl.DataFrame, pl.DataFrame]:
    """Run the normalising query in batches, splitting good rows from flagged ones (their
    line numbers) as they come: the result is built once, never copied by a final filter
    or rechunk (this keeps a 10M-row CSV under 4 GB)."""
    good: list[pl.DataFrame] = []
    flagged: list[pl.DataFrame] = []
    try:
        for batch in lazy.collect_batches(chunk_size=_BATCH_ROWS, engine="streaming"):
            mask = batch[_FLAG]
            if mask.any():
                flagged.append(batch.filter(mask).select(LINE))
                batch = batch.filter(~mask)
            good.append(batch.drop(LINE, _FLAG))
    except (pl.exceptions.PolarsError, OSError) as exc:
        raise EventsError(f"{label}: cannot read ({first_line(exc)})") from exc
    schema = lazy.collect_schema()
    lines = pl.concat(flagged) if flagged else pl.DataFrame(schema=schema).select(LINE)
    if not good:
        return pl.DataFrame(schema=schema).drop(LINE, _FLAG), lines
    return pl.concat(good, rechunk=False), lines


def _time_formats(
    src: Source, name: str, dtype: pl.DataType, first: tuple[str, ...] = ()
) -> tuple[str, ...] | None:
    """The timestamp layouts of a text column (a preset's ``first``), from one example per
    distinct shape (one cheap scan of that column instead of a parse pass per layout)."""
    if dtype != pl.String:
        return None
    try:
        examples = (
            src.lazy.select(pl.col(name).str.strip_chars().alias("v"))
            .filter(pl.col("v").str.len_bytes() > 0)
            .group_by(shapes(pl.col("v")).alias("shape"))
            .agg(pl.col("v").first())
            .collect(engine="streaming")["v"]
            .to_list()
        )
    except (pl.exceptions.PolarsError, OSError):
        return None  # the full read reports the problem
    if len(examples) > 50:  # free-form text: keep every layout
        return None
    return formats_for(examples, first)


def _raw(names: list[str], col: str) -> pl.Expr:
    """The first non-blank cell of the headers that fill ``col``, as text, for reasons."""
    parts = [text(pl.col(n).cast(pl.String), pl.String()) for n in names]
    return (pl.coalesce(parts) if len(parts) > 1 else parts[0]).alias(_RAW + col)


def _given(names: list[str], schema: pl.Schema, col: str) -> pl.Expr:
    """Whether a header that fills ``col`` has a non-blank cell (``_raw`` is not null),
    never null; a number or a time is given when it is not null (no text is made)."""

    def one(n: str) -> pl.Expr:
        dtype = schema[n]
        if dtype.is_numeric() or dtype.is_temporal() or dtype == pl.Boolean:
            return pl.col(n).is_not_null()
        return text(pl.col(n).cast(pl.String), pl.String()).is_not_null()

    return pl.any_horizontal([one(n) for n in names]).fill_null(False).alias(_GIVEN + col)


#: the id columns in which a NUL byte is corruption, not data
_NUL_CHECKED = (
    "transaction_id",
    "offer_id",
    "publisher_id",
    "click_id",
    "external_transaction_id",
    *[f"sub{n}" for n in range(1, 6)],
)


def _flag(
    mapping: dict[str, str], forced_type: str | None, ignore: tuple[str, ...] = ()
) -> pl.Expr:
    """Whether ``_reason`` names a problem (or ``IGNORED``), computed from the canonical
    columns without making any text: ``_reason``'s checks, where a pair that splits one
    condition into two messages (missing or bad time, missing or unknown status) is the
    one condition, and every message is non-null when its condition holds."""
    conds = [pl.col("transaction_id").is_null(), pl.col("occurred_at").is_null()]
    if ignore:
        conds.append(_ignored(ignore))
    conds += [_has_nul(c) for c in _NUL_CHECKED if c in mapping]
    if forced_type is None and "event_type" in mapping:
        conds.append(pl.col("event_type").is_null())
    conds.append(pl.col("status").is_null())
    conds += [
        pl.col(c).is_null() & pl.col(_GIVEN + c) for c in ("payout", "revenue") if c in mapping
    ]
    return pl.any_horizontal(conds).fill_null(True)


def _ignored(ignore: tuple[str, ...]) -> pl.Expr:
    status = pl.col(_RAW + "status").str.strip_chars().str.to_lowercase()
    return status.is_in(ignore).fill_null(False)


def _has_nul(col: str) -> pl.Expr:
    return pl.col(col).str.contains("\x00", literal=True).fill_null(False)


def _reason(
    mapping: dict[str, str], forced_type: str | None, ignore: tuple[str, ...] = ()
) -> pl.Expr:
    """Why a row is quarantined (first problem only), null for a good row; ``IGNORED`` for
    a row whose status is one the caller ignores. Over the canonical columns plus
    ``_raw`` and ``_given`` of the checked ones; ``_flag`` says the same yes or no."""

    def raw(col: str) -> pl.Expr:
        return pl.col(_RAW + col)

    def given(col: str) -> pl.Expr:
        return pl.col(_GIVEN + col)

    checks: list[tuple[pl.Expr, pl.Expr]] = []
    if ignore:
        checks.append((_ignored(ignore), pl.lit(IGNORED)))
    checks += [
        (pl.col("transaction_id").is_null(), pl.lit("missing transaction_id")),
        (pl.col("occurred_at").is_null() & ~given("occurred_at"), pl.lit("missing occurred_at")),
        (
            pl.col("occurred_at").is_null(),
            pl.format("bad timestamp {}", _quoted(raw("occurred_at"))),
        ),
    ]
    for col in _NUL_CHECKED:
        if col in mapping:
            checks.append((_has_nul(col), pl.lit(f"NUL byte in {col}")))
    if forced_type is None and "event_type" in mapping:
        checks.append(
            (
                pl.col("event_type").is_null(),
                pl.format(
                    "unknown event_type {} (valid: impression, click, conversion, event)",
                    _quoted(raw("event_type").fill_null("")),
                ),
            )
        )
    if "status" in mapping:
        checks.append(
            (
                pl.col("status").is_null() & given("status"),
                pl.format(
                    "unknown status {} (valid: approved, rejected, pending)",
                    _quoted(raw("status")),
                ),
            )
        )
    checks.append((pl.col("status").is_null(), pl.lit("missing status")))
    for col in ("payout", "revenue"):
        if col in mapping:
            checks.append(
                (
                    pl.col(col).is_null() & given(col),
                    pl.format("bad {} {}", pl.lit(col), _quoted(raw(col))),
                )
            )
    return first_of(checks, pl.lit(None, dtype=pl.String))


def _quoted(expr: pl.Expr) -> pl.Expr:
    return pl.concat_str(pl.lit("'"), expr.str.slice(0, 80), pl.lit("'"))
