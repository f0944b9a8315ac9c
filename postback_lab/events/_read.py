"""``read_events``: any events source -> the canonical Polars frame plus a quarantine frame."""

from __future__ import annotations

import glob
import html
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any, NamedTuple

import polars as pl

from .._errors import EventsError, closest
from . import _parse
from ._schema import ALIASES, CANONICAL, REQUIRED, SCHEMA, normalise_header

QUARANTINE_SCHEMA = {"source": pl.String, "line": pl.Int64, "reason": pl.String, "raw": pl.String}
_CSV = {".csv", ".tsv", ".txt"}
_PARQUET = {".parquet", ".pq"}
_NDJSON = {".ndjson", ".jsonl", ".json"}
_LINE = "__line"
_REASON = "__reason"
_RAW = "__raw_"
_BATCH_ROWS = 200_000
_CHECKED_RAW = ("occurred_at", "event_type", "status", "payout", "revenue")


class Events(NamedTuple):
    """The canonical events frame and the rows that could not be read (``frame, quarantine``)."""

    frame: pl.DataFrame
    quarantine: pl.DataFrame

    def __str__(self) -> str:
        return self.summary()

    def summary(self) -> str:
        """One paragraph: rows by event type and status, time range, quarantine count."""
        f = self.frame
        if f.height == 0:
            head = "0 events"
        else:
            counts = f.group_by("event_type", "status").len().sort("event_type", "status")
            parts = ", ".join(f"{r[0]}/{r[1]}: {r[2]:,}" for r in counts.iter_rows())
            lo, hi = f["occurred_at"].min(), f["occurred_at"].max()
            head = (
                f"{f.height:,} events ({parts}) from {lo:%Y-%m-%d %H:%M} to {hi:%Y-%m-%d %H:%M} UTC"
            )
        q = self.quarantine.height
        return head + (f"; {q:,} rows quarantined (see .quarantine)" if q else "; none quarantined")

    def _repr_html_(self) -> str:
        body = self.frame.head(10)._repr_html_()
        extra = ""
        if self.quarantine.height:
            reasons = self.quarantine.group_by("reason").len().sort("len", descending=True)
            extra = "<p><b>Quarantined by reason</b></p>" + reasons.head(10)._repr_html_()
        return f"<div><p>{html.escape(self.summary())}</p>{body}{extra}</div>"


@dataclass(frozen=True)
class _Source:
    """One readable unit: a lazy frame of the raw columns, numbered, and its label."""

    label: str
    lazy: pl.LazyFrame
    path: Path | None = None  # a CSV file, which the careful parser can re-read
    sep: str = ","
    rejected: pl.DataFrame | None = None  # rows the careful parser could not split


def read_events(
    source: Any,
    *,
    columns: Mapping[str, str] | None = None,
    event_type: str | None = None,
    encoding: str = "utf-8",
) -> Events:
    """Read events from files (CSV, Parquet, NDJSON; globs and lists), a DuckDB table
    (``duckdb:path.duckdb::table``) or a Polars/pandas/Arrow frame.

    ``columns`` maps source columns to canonical ones (either direction) and wins over the
    automatic aliases; ``event_type`` sets the type of every row; ``encoding`` is the text
    encoding of CSV files (UTF-8, with or without BOM, by default). Rows that cannot be
    read are returned in ``quarantine`` with their file, line and reason, never dropped.
    """
    if event_type is not None:
        et = _parse.EVENT_TYPE_ALIASES.get(event_type.strip().lower())
        if et is None:
            raise EventsError(
                f"event_type={event_type!r} is not one of impression, click, conversion, event"
            )
        event_type = et
    frames, quarantines = [], []
    for src in _sources(source):
        good, bad = _read_one(src, columns or {}, event_type, encoding)
        frames.append(good)
        quarantines.append(bad)
    if not frames:
        raise EventsError(f"no events source found in {source!r}")
    frame = pl.concat(frames, how="diagonal_relaxed") if len(frames) > 1 else frames[0]
    quarantine = pl.concat(quarantines) if len(quarantines) > 1 else quarantines[0]
    return Events(frame, quarantine)


def _sources(source: Any) -> Iterable[_Source]:
    """Expand a user's source argument into readable units."""
    if isinstance(source, Events):
        yield _Source("<events>", source.frame.lazy().with_row_index(_LINE, offset=1))
    elif isinstance(source, (list, tuple)):
        for s in source:
            yield from _sources(s)
    elif isinstance(source, (str, Path)):
        text = str(source)
        if text.startswith("duckdb:"):
            yield _duckdb_source(text)
            return
        paths = sorted(glob.glob(text)) if any(c in text for c in "*?[") else [text]
        if not paths:
            raise EventsError(f"{text}: no file matches this pattern")
        for p in paths:
            path = Path(p)
            if path.is_dir():
                found = sorted(
                    x for x in path.iterdir() if x.suffix.lower() in _CSV | _PARQUET | _NDJSON
                )
                if not found:
                    raise EventsError(f"{path}: folder holds no CSV, Parquet or NDJSON file")
                yield from _sources(found)
            else:
                yield _file_source(path)
    else:
        yield _frame_source(source)


def _file_source(path: Path) -> _Source:
    if not path.exists():
        raise EventsError(f"{path}: no such file")
    suffix = path.suffix.lower()
    if suffix in _CSV:
        sep = "\t" if suffix == ".tsv" else ","
        lazy = pl.scan_csv(
            path,
            infer_schema=False,
            separator=sep,
            row_index_name=_LINE,
            row_index_offset=2,
        )
    elif suffix in _PARQUET:
        lazy = pl.scan_parquet(path).with_row_index(_LINE, offset=1)
    elif suffix in _NDJSON:
        lazy = pl.scan_ndjson(path, infer_schema_length=10_000).with_row_index(_LINE, offset=1)
    else:
        raise EventsError(
            f"{path}: unknown file type {suffix or '(none)'!r}; use .csv, .tsv, .parquet, "
            ".ndjson or .jsonl, or pass a frame"
        )
    return _Source(
        str(path), lazy, path if suffix in _CSV else None, "\t" if suffix == ".tsv" else ","
    )


def _duckdb_source(text: str) -> _Source:
    import duckdb

    spec = text.removeprefix("duckdb:")
    db, sep, table = spec.partition("::")
    if not sep or not table:
        raise EventsError(f"{text}: write a DuckDB table as duckdb:path.duckdb::table")
    if not Path(db).exists():
        raise EventsError(f"{db}: no such DuckDB file")
    try:
        with duckdb.connect(db, read_only=True) as con:
            frame = con.sql(f"SELECT * FROM {_quote_ident(table)}").pl()
    except duckdb.Error as exc:
        raise EventsError(f"{text}: cannot read the table ({exc})") from exc
    return _Source(text, frame.lazy().with_row_index(_LINE, offset=1))


def _quote_ident(name: str) -> str:
    return ".".join('"' + part.replace('"', '""') + '"' for part in name.split("."))


def _frame_source(obj: Any) -> _Source:
    if isinstance(obj, pl.LazyFrame):
        lazy = obj
    elif isinstance(obj, pl.DataFrame):
        lazy = obj.lazy()
    elif type(obj).__module__.startswith("pandas"):
        lazy = pl.from_pandas(obj).lazy()
    elif type(obj).__module__.startswith("pyarrow"):
        lazy = pl.from_arrow(obj).lazy()  # type: ignore[union-attr]
    else:
        raise EventsError(
            f"cannot read events from a {type(obj).__name__}; pass a path, a glob, "
            "'duckdb:file.duckdb::table' or a Polars/pandas/Arrow frame"
        )
    return _Source(f"<{type(obj).__name__}>", lazy.with_row_index(_LINE, offset=1))


def resolve_columns(label: str, found: list[str], explicit: Mapping[str, str]) -> dict[str, str]:
    """Map canonical column -> source column: explicit mapping first, then aliases."""
    mapping: dict[str, str] = {}
    for key, value in explicit.items():
        if key in SCHEMA and value in found:
            mapping[key] = value
        elif value in SCHEMA and key in found:
            mapping[value] = key
        else:
            col = key if key in SCHEMA else value
            src = value if key in SCHEMA else key
            raise EventsError(
                f"{label}: columns= maps {src!r} to {col!r} but the source has no column "
                f"{src!r}; columns found: {', '.join(found)}"
            )
    by_norm: dict[str, str] = {}
    for name in found:
        by_norm.setdefault(normalise_header(name), name)
    used = set(mapping.values())
    for canonical, aliases in ALIASES.items():
        if canonical in mapping:
            continue
        for alias in aliases:
            name = by_norm.get(alias)
            if name is not None and name not in used:
                mapping[canonical] = name
                used.add(name)
                break
    for req in REQUIRED:
        if req not in mapping:
            free = [f for f in found if f not in used]
            near = closest(req, free) or next(
                (f for f in free if closest(normalise_header(f), ALIASES[req])), None
            )
            hint = (
                f"; closest: {near!r} (map it with columns={{{near!r}: {req!r}}})" if near else ""
            )
            raise EventsError(
                f"{label}: required column {req!r} not found; columns found: "
                f"{', '.join(found) or '(none)'}{hint}"
            )
    return mapping


def _careful_csv(src: _Source, encoding: str) -> _Source:
    """Re-read a CSV the fast parser rejected (ragged rows, stray quotes, another encoding)
    with Python's csv module: rows with the wrong number of fields are quarantined with
    their line, the rest go on as text."""
    import csv
    import io
    import json

    assert src.path is not None
    try:
        text = src.path.read_bytes().decode(encoding)
    except UnicodeDecodeError as exc:
        line = src.path.read_bytes()[: exc.start].count(b"\n") + 1
        raise EventsError(
            f"{src.label}: line {line} is not valid {encoding} "
            f"(byte 0x{exc.object[exc.start]:02x});"
            " pass the file's encoding, e.g. encoding='latin-1' (CLI: --encoding latin-1)"
        ) from None
    except LookupError:
        raise EventsError(f"{src.label}: unknown encoding {encoding!r}") from None
    reader = csv.reader(io.StringIO(text.removeprefix("\ufeff"), newline=""), delimiter=src.sep)
    try:
        header = next(reader)
    except StopIteration:
        raise EventsError(f"{src.label}: the file is empty") from None
    good: list[list[str]] = []
    lines: list[int] = []
    bad: list[tuple[int, str, str]] = []
    start = reader.line_num + 1
    for record in reader:
        if record and len(record) != len(header):
            bad.append(
                (
                    start,
                    f"ragged row: {len(record)} fields, the header has {len(header)}",
                    json.dumps(record, ensure_ascii=False),
                )
            )
        elif record:
            good.append(record)
            lines.append(start)
        start = reader.line_num + 1
    frame = pl.DataFrame(good, schema=dict.fromkeys(header, pl.String()), orient="row")
    frame = frame.with_columns(pl.Series(_LINE, lines, dtype=pl.UInt32)).select(_LINE, *header)
    rejected = pl.DataFrame(
        [(src.label, line, why, raw) for line, why, raw in bad],
        schema=QUARANTINE_SCHEMA,
        orient="row",
    )
    return _Source(src.label, frame.lazy(), None, src.sep, rejected)


def _read_one(
    src: _Source, explicit: Mapping[str, str], event_type: str | None, encoding: str = "utf-8"
) -> tuple[pl.DataFrame, pl.DataFrame]:
    if src.path is not None and encoding.lower().replace("_", "-") not in ("utf-8", "utf8"):
        src = _careful_csv(src, encoding)
    try:
        good, bad = _normalise(src, explicit, event_type)
    except EventsError:
        if src.path is None:
            raise
        good, bad = _normalise(_careful_csv(src, encoding), explicit, event_type)
    return good, bad


def _normalise(
    src: _Source, explicit: Mapping[str, str], event_type: str | None
) -> tuple[pl.DataFrame, pl.DataFrame]:
    try:
        schema = src.lazy.collect_schema()
    except (pl.exceptions.PolarsError, OSError) as exc:
        raise EventsError(f"{src.label}: cannot read ({_first_line(exc)})") from exc
    found = [c for c in schema.names() if c != _LINE]
    mapping = resolve_columns(src.label, found, explicit)
    used = set(mapping.values())

    exprs: list[pl.Expr] = []
    for col, dtype in SCHEMA.items():
        name = mapping.get(col)
        if name is None:
            exprs.append(pl.lit(None, dtype=dtype).alias(col))
            continue
        raw, rdt = pl.col(name), schema[name]
        if col == "occurred_at":
            e = _parse.timestamp(raw, rdt, _time_formats(src, name, rdt))
        elif col in ("payout", "revenue"):
            e = _parse.number(raw, rdt)
        elif col == "status":
            e = _parse.status(raw, rdt)
        elif col == "event_type":
            e = _parse.event_type(raw, rdt)
        else:  # sub ids are the partner's values: kept exactly, only empty means missing
            e = _parse.text(raw, rdt, strip=not col.startswith("sub"))
        exprs.append(e.alias(col))
    if event_type is not None:
        exprs[CANONICAL.index("event_type")] = pl.lit(event_type).alias("event_type")
    elif "event_type" not in mapping:
        exprs[CANONICAL.index("event_type")] = pl.lit("conversion").alias("event_type")
    extras = [pl.col(c) for c in found if c not in used]

    checked = [c for c in _CHECKED_RAW if c in mapping]
    raws = [pl.col(mapping[c]).cast(pl.String).alias(_RAW + c) for c in checked]
    frame_lazy = src.lazy.select(pl.col(_LINE), *exprs, *extras, *raws)
    frame_lazy = (
        frame_lazy.with_columns(
            # clicks and impressions rarely carry a status: they count as approved
            pl.when(
                pl.col("status").is_null() & pl.col("event_type").is_in(["click", "impression"])
            )
            .then(pl.lit("approved"))
            .otherwise(pl.col("status"))
            .alias("status")
        )
        .with_columns(_reason(mapping, event_type).alias(_REASON))
        .drop([_RAW + c for c in checked])
    )
    good, bad = _collect(src.label, frame_lazy)
    rejected = src.rejected if src.rejected is not None else pl.DataFrame(schema=QUARANTINE_SCHEMA)
    if bad.height == 0:
        return good, rejected
    raw = (
        src.lazy.join(bad.lazy(), on=_LINE, how="semi")
        .select(_LINE, pl.struct(pl.all().exclude(_LINE)).struct.json_encode().alias("raw"))
        .collect()
    )
    quarantine = bad.join(raw, on=_LINE, how="left").select(
        pl.lit(src.label).alias("source"),
        pl.col(_LINE).cast(pl.Int64).alias("line"),
        pl.col(_REASON).alias("reason"),
        "raw",
    )
    quarantine = pl.concat([rejected, quarantine]).sort("line")
    return good, quarantine


def _collect(label: str, lazy: pl.LazyFrame) -> tuple[pl.DataFrame, pl.DataFrame]:
    """Run the normalising query in batches, splitting good rows from quarantined ones as
    they come: the result is built once, never copied by a final filter or rechunk (this
    keeps a 10M-row CSV under 4 GB)."""
    good: list[pl.DataFrame] = []
    bad: list[pl.DataFrame] = []
    try:
        for batch in lazy.collect_batches(chunk_size=_BATCH_ROWS, engine="streaming"):
            mask = batch[_REASON].is_not_null()
            if mask.any():
                bad.append(batch.filter(mask).select(_LINE, _REASON))
                batch = batch.filter(~mask)
            good.append(batch.drop(_LINE, _REASON))
    except (pl.exceptions.PolarsError, OSError) as exc:
        raise EventsError(f"{label}: cannot read ({_first_line(exc)})") from exc
    schema = lazy.collect_schema()
    if not good:
        empty = pl.DataFrame(schema=schema)
        return empty.drop(_LINE, _REASON), empty.select(_LINE, _REASON)
    frame = pl.concat(good, rechunk=False)
    return frame, (
        pl.concat(bad, rechunk=False) if bad else pl.DataFrame(schema=schema).select(_LINE, _REASON)
    )


def _time_formats(src: _Source, name: str, dtype: pl.DataType) -> tuple[str, ...] | None:
    """The timestamp layouts of a text column, from one example per distinct shape (one
    cheap scan of that column instead of a parse pass per known layout)."""
    if dtype != pl.String:
        return None
    try:
        examples = (
            src.lazy.select(pl.col(name).str.strip_chars().alias("v"))
            .filter(pl.col("v").str.len_bytes() > 0)
            .group_by(_parse.shapes(pl.col("v")).alias("shape"))
            .agg(pl.col("v").first())
            .collect(engine="streaming")["v"]
            .to_list()
        )
    except (pl.exceptions.PolarsError, OSError):
        return None  # the full read reports the problem
    if len(examples) > 50:  # free-form text: keep every layout
        return None
    return _parse.formats_for(examples)


def _reason(mapping: dict[str, str], event_type: str | None) -> pl.Expr:
    """Why a row is quarantined (first problem only), null for a good row."""

    def raw(col: str) -> pl.Expr:
        return pl.col(_RAW + col)

    def given(col: str) -> pl.Expr:
        return raw(col).str.strip_chars().str.len_bytes() > 0

    checks: list[tuple[pl.Expr, pl.Expr]] = [
        (pl.col("transaction_id").is_null(), pl.lit("missing transaction_id")),
        (pl.col("occurred_at").is_null() & ~given("occurred_at"), pl.lit("missing occurred_at")),
        (
            pl.col("occurred_at").is_null(),
            pl.format("bad timestamp {}", _quoted(raw("occurred_at"))),
        ),
    ]
    for col in (
        "transaction_id",
        "offer_id",
        "publisher_id",
        "click_id",
        "external_transaction_id",
        *[f"sub{n}" for n in range(1, 6)],
    ):
        if col in mapping:  # a NUL byte in an id is corruption, not data
            checks.append(
                (
                    pl.col(col).str.contains("\x00", literal=True).fill_null(False),
                    pl.lit(f"NUL byte in {col}"),
                )
            )
    if event_type is None and "event_type" in mapping:
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
                pl.col("status").is_null() & given("status").fill_null(False),
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
                    pl.col(col).is_null() & given(col).fill_null(False),
                    pl.format("bad {} {}", pl.lit(col), _quoted(raw(col))),
                )
            )
    expr = pl.when(checks[0][0]).then(checks[0][1])
    for cond, why in checks[1:]:
        expr = expr.when(cond).then(why)
    return expr.otherwise(pl.lit(None, dtype=pl.String))


def _quoted(expr: pl.Expr) -> pl.Expr:
    return pl.concat_str(pl.lit("'"), expr.str.slice(0, 80), pl.lit("'"))


def _first_line(exc: BaseException) -> str:
    return str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
