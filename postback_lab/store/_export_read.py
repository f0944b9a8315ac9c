"""Reading a platform's postback-log export (CSV, Parquet, NDJSON or a frame) as log rows:
the reading and mapping half of ``import_log`` (``_import`` appends and links them).

Headers are mapped by an explicit ``rename=`` mapping, then the platform preset's
postback-log columns (``preset=``, or ``auto`` to guess), then the common names
(``Firing Time``, ``Transaction ID``, ``Response Code``, ``Error``, ``Server Response``,
``Postback Name``, ``URL``, ``Offer ID``, ``Publisher ID``, ``Status`` …). Conversion
statuses are normalised as events are (``Approved``/``Declined``, Affise's ``1``/``3`` …).
Rows that cannot be read (a bad firing time or response code, no transaction id, an
unknown status) are quarantined with their line and reason. The export's content hash
(for the run id) is taken over the file in chunks, never read whole into memory.
"""

from __future__ import annotations

import hashlib
import json
import zoneinfo
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import polars as pl

from .._errors import EventsError, LogImportError, closest
from .._util import (
    first_of,
    formats_for,
    is_naive,
    number,
    shapes,
    text,
    timestamp,
)
from ..events import (
    LINE,
    PRESETS,
    QUARANTINE_SCHEMA,
    STATUSES,
    Preset,
    Source,
    careful_csv,
    check_ignore_status,
    check_status_map,
    detect,
    get_preset,
    normalise_header,
    normalise_status,
    preset_names,
    sources,
    unknown_statuses,
)

#: bytes hashed at a time (the export's digest streams the file)
CHUNK = 1 << 20

#: log column -> the common header names of platforms' exports (normalised)
HEADERS: dict[str, tuple[str, ...]] = {
    "fired_at": (
        "firing_time",
        "fired_at",
        "fire_time",
        "sent_at",
        "time",
        "date",
        "timestamp",
        "created_at",
        "datetime",
    ),
    "transaction_id": ("transaction_id", "txn_id", "transaction", "conversion_id", "tid"),
    "click_id": ("click_id", "clickid", "click"),
    "status_code": ("response_code", "status_code", "http_code", "http_status", "code"),
    "error": ("error", "error_message", "errors"),
    "response_body": ("server_response", "response_body", "response", "body"),
    "rule": ("postback_name", "postback", "rule", "name", "pixel_name"),
    "url": ("url", "postback_url", "request_url"),
    "offer_id": ("offer_id", "offer", "campaign_id"),
    "publisher_id": ("publisher_id", "affiliate_id", "publisher", "affiliate", "partner_id"),
    "status": ("status", "conversion_status"),
}
REQUIRED = ("fired_at", "transaction_id", "status_code")
TEXT = (
    "transaction_id",
    "click_id",
    "error",
    "response_body",
    "rule",
    "url",
    "offer_id",
    "publisher_id",
)
#: values of a "Status" column that describe the delivery, not the conversion (integr8)
DELIVERY_WORDS = frozenset(
    {"success", "successful", "succeeded", "failed", "failure", "fail", "error", "ok", "sent"}
)
_REASON, _RAW = "__reason", "__raw_"
#: the reason of rows whose status the caller ignores: left out and counted
IGNORED = "__ignored_status"


@dataclass(frozen=True)
class Statuses:
    """A user's status spellings (``sale`` -> ``approved``) and the statuses whose rows are
    left out (``ping``, ``test``), validated as the events reader validates them."""

    mapping: Mapping[str, str] = field(default_factory=dict)
    ignore: tuple[str, ...] = ()

    @classmethod
    def of(cls, mapping: Mapping[str, str] | None, ignore: Sequence[str] | str | None) -> Statuses:
        try:
            return cls(check_status_map(mapping), check_ignore_status(ignore))
        except EventsError as exc:
            raise LogImportError(str(exc)) from None


@dataclass(frozen=True)
class Export:
    """A platform export read as log rows: the readable ones (``frame``, with each row's
    ``LINE``), the quarantined ones and notes on how it was read."""

    label: str
    frame: pl.DataFrame
    quarantine: pl.DataFrame
    notes: tuple[str, ...]
    #: content hash of the source and the options, for the run id
    digest: str


def read_export(
    data: Any,
    *,
    preset: str | None = None,
    rule: str | None = None,
    rename: Mapping[str, str] | None = None,
    encoding: str = "utf-8",
    timezone: str = "UTC",
    status_map: Mapping[str, str] | None = None,
    ignore_status: Sequence[str] | str | None = None,
) -> pl.DataFrame:
    """A platform export as log rows (the ``LOG_SCHEMA`` columns it has, readable rows
    only; ``import_log`` also returns the quarantined ones)."""
    statuses = Statuses.of(status_map, ignore_status)
    return read_rows(data, preset, rule, rename, encoding, timezone, statuses).frame.drop(LINE)


def read_rows(
    data: Any,
    preset_name: str | None,
    rule: str | None,
    rename: Mapping[str, str] | None,
    encoding: str,
    timezone: str,
    statuses: Statuses | None = None,
) -> Export:
    """``data`` (one file or frame) read as an Export: its readable rows mapped to log
    columns, each with its ``LINE``, the quarantined ones, notes and the digest."""
    try:
        zoneinfo.ZoneInfo(timezone)
    except (zoneinfo.ZoneInfoNotFoundError, ValueError):
        raise LogImportError(
            f"timezone={timezone!r} is not a time zone; write e.g. UTC, Europe/Berlin or "
            "America/New_York"
        ) from None
    src = _source(data, encoding)
    try:
        raw = src.lazy.collect()
    except (pl.exceptions.PolarsError, OSError) as exc:
        if src.path is None:
            raise LogImportError(f"{src.label}: cannot read ({exc})") from exc
        src = _careful(src, encoding)
        raw = src.lazy.collect()
    headers = [c for c in raw.columns if c != LINE]
    preset, notes = _preset(src.label, preset_name, headers)
    mapping = _mapping(src.label, headers, dict(rename or {}), preset)
    if "status" in mapping and _delivery_words(raw[mapping["status"]]):
        notes.append(
            f"{src.label}: column {mapping['status']!r} holds delivery results, not the "
            "conversion's status; rows link by rule and transaction id"
        )
        del mapping["status"]
    statuses = statuses or Statuses()
    frame, reasons = _convert(raw, mapping, preset, rule, timezone, statuses)
    ignored = (reasons == IGNORED).fill_null(False)
    if ignored.any():
        n = int(ignored.sum())
        notes.append(
            f"{src.label}: {n:,} row{'s' if n != 1 else ''} with an ignored status "
            f"({', '.join(statuses.ignore)}) left out"
        )
        frame, raw, reasons = frame.filter(~ignored), raw.filter(~ignored), reasons.filter(~ignored)
    if timezone == "UTC" and _naive(raw[mapping["fired_at"]]):
        notes.append(
            f"{src.label}: times in {mapping['fired_at']!r} carry no time zone and were read "
            "as UTC (pass timezone=..., on the command line --timezone, if they are local)"
        )
    bad = reasons.is_not_null()
    quarantine = _quarantine(src, raw.filter(bad), reasons.filter(bad))
    if preset is None and quarantine["reason"].str.starts_with("unknown status").any():
        notes.append(
            f"{src.label}: statuses of another platform? name it with preset= (on the "
            "command line --source PLATFORM, or --source auto) so its spellings are known"
        )
    digest = _digest(src, raw, [preset_name, rule, sorted(mapping.items()), timezone])
    notes += unknown_statuses(quarantine)
    return Export(src.label, frame.filter(~bad), quarantine, tuple(notes), digest)


def _source(data: Any, encoding: str) -> Source:
    """The one readable unit ``data`` names (a file or a frame)."""
    try:
        found = list(sources(data))
    except EventsError as exc:
        raise LogImportError(str(exc)) from None
    if len(found) != 1:
        raise LogImportError(
            f"{data!r} names {len(found)} exports; import them one at a time (each is a run)"
        )
    src = found[0]
    if src.path is not None and encoding.lower().replace("_", "-") not in ("utf-8", "utf8"):
        src = _careful(src, encoding)
    return src


def _careful(src: Source, encoding: str) -> Source:
    try:
        return careful_csv(src, encoding)
    except EventsError as exc:
        raise LogImportError(str(exc)) from None


def _digest(src: Source, raw: pl.DataFrame, options: list[Any]) -> str:
    """The content hash of an export and the options it was read with (the run id's): a
    file hashed in 1 MiB chunks as they stream from disk, never held whole in memory; a
    frame by its rows."""
    digest = hashlib.sha256(json.dumps(options).encode())
    if src.path is None:
        digest.update(raw.drop(LINE).hash_rows().to_numpy().tobytes())
        return digest.hexdigest()[:12]
    with src.path.open("rb") as f:
        while chunk := f.read(CHUNK):
            digest.update(chunk)
    return digest.hexdigest()[:12]


def _preset(label: str, name: str | None, headers: list[str]) -> tuple[Preset | None, list[str]]:
    """The preset called ``name`` (``auto``: the one whose log columns the export has
    most of, when it recognises more than the common names do, or as many and the headers
    look like that platform's), with a note saying what auto found."""
    if name is None:
        return None, []
    given, name = name, name.strip().lower()
    if name not in preset_names():
        raise LogImportError(
            f"preset={given!r} is not a known platform; valid: {', '.join(preset_names())}"
        )
    if name != "auto":
        return get_preset(name), []
    guess, _ = detect(headers)  # the conversion-export signature breaks ties
    hits, _, best = max(
        (
            (len(p.log_map(headers)) + (p.pair_headers(headers) is not None), p is guess, p)
            for p in PRESETS.values()
        ),
        key=lambda s: s[:2],
    )
    by_norm = {normalise_header(h) for h in headers}
    common = sum(  # the conversion's status aside: presets leave delivery words out
        any(a in by_norm for a in aliases) for col, aliases in HEADERS.items() if col != "status"
    )
    if hits == 0 or hits < common or (hits == common and best is not guess):
        return None, [
            f"{label}: preset=auto: no platform's postback-log columns recognised; read with "
            "the common names (name the platform with --source if the export is one's)"
        ]
    return best, [f"{label}: preset=auto: read as {best.title}'s postback log ({hits} columns)"]


def _mapping(
    label: str,
    headers: list[str],
    explicit: dict[str, str],
    preset: Preset | None,
) -> dict[str, str]:
    """Log column -> export header: the explicit mapping (either direction), then the
    preset's log columns, then the common names. A missing required column is a
    LogImportError listing the columns found and the closest."""
    mapping: dict[str, str] = {}
    for key, value in explicit.items():
        if key in HEADERS and value in headers:
            mapping[key] = value
        elif value in HEADERS and key in headers:
            mapping[value] = key
        else:
            wrong = value if key in HEADERS else key
            near = closest(wrong, headers if key in HEADERS or value in HEADERS else HEADERS)
            raise LogImportError(
                f"{label}: rename= maps {key!r} to {value!r}, but "
                + (
                    f"the export has no column {wrong!r}"
                    if key in HEADERS or value in HEADERS
                    else f"neither is a log column ({', '.join(HEADERS)})"
                )
                + (f" (closest: {near!r})" if near else "")
                + f"; columns found: {', '.join(headers)}"
            )
    if preset is not None:
        for col, header in preset.log_map(headers).items():
            if col not in mapping and header not in mapping.values():
                mapping[col] = header
    by_norm: dict[str, str] = {}
    for h in headers:
        by_norm.setdefault(normalise_header(h), h)
    for col, aliases in HEADERS.items():
        if col in mapping:
            continue  # a Status of delivery results (integr8's) is dropped after reading
        for a in aliases:
            found = by_norm.get(a)
            if found is not None and found not in mapping.values():
                mapping[col] = found
                break
    # a log naming only the click (Voluum, Binom, Affise) links through the plan's click
    # ids; the click id then stands in as the row's transaction id
    missing = [
        c
        for c in REQUIRED
        if c not in mapping and not (c == "transaction_id" and "click_id" in mapping)
    ]
    if missing:
        free = [h for h in headers if h not in mapping.values()]
        hints = {c: closest(c, free) for c in missing}
        raise LogImportError(
            f"{label}: no column for {', '.join(missing)}; columns found: {', '.join(headers)}"
            + "".join(f"; closest to {c}: {h!r}" for c, h in hints.items() if h)
            + (
                "; name the conversion id (transaction_id) or the click id (click_id)"
                if "transaction_id" in missing
                else ""
            )
            + f" (map a column with rename={{'Header': {missing[0]!r}}}, on the command line "
            f"--columns 'Header={missing[0]}'"
            + ("" if preset else ", or name the platform with --source, e.g. --source auto")
            + ")"
        )
    return mapping


def _naive(values: pl.Series) -> bool:
    """Firing times written without an offset (read in the given time zone)."""
    if isinstance(values.dtype, pl.Datetime):
        return values.dtype.time_zone is None
    if values.dtype != pl.String:
        return False
    v = values.str.strip_chars().drop_nulls()
    first: list[str] = v.filter(v.str.len_bytes() > 0).head(1).to_list()
    layouts: tuple[str, ...] = formats_for(first) if first else ()
    return bool(layouts) and is_naive(layouts[0])


def _delivery_words(values: pl.Series) -> bool:
    """A status column whose every value is a delivery result (Success, Failed …)."""
    seen = values.cast(pl.String).str.strip_chars().str.to_lowercase().drop_nulls().unique()
    seen = seen.filter(seen.str.len_bytes() > 0)
    return seen.len() > 0 and all(v in DELIVERY_WORDS for v in seen.to_list())


def _convert(
    raw: pl.DataFrame,
    mapping: dict[str, str],
    preset: Preset | None,
    rule: str | None,
    timezone: str,
    statuses: Statuses,
) -> tuple[pl.DataFrame, pl.Series]:
    """The log columns of every row, and why each row is quarantined (null: it is not)."""
    schema = raw.schema

    def col(c: str) -> pl.Expr:
        return pl.col(mapping[c])

    fired = mapping["fired_at"]
    layouts = _layouts(raw[fired], preset.date_formats if preset else ())
    labelled = preset.labelled_ids if preset is not None else ()
    texts = {c: text(col(c), schema[mapping[c]]) for c in TEXT if c in mapping}
    for c in labelled:  # Affise's '(101) Crypto App Install' -> '101'
        if c in texts:
            texts[c] = pl.coalesce(texts[c].str.extract(r"^\(\s*([^()\s]+)\s*\)"), texts[c])
    pair = preset.pair_headers(list(schema)) if preset is not None else None
    if pair is not None:  # Keitaro: the conversion is the click and its number within it
        click = text(pl.col(pair[0]), schema[pair[0]])
        nth = text(pl.col(pair[1]), schema[pair[1]])
        texts["transaction_id"] = (
            pl.when(nth.is_not_null()).then(pl.concat_str(click, pl.lit(":"), nth)).otherwise(click)
        )
    if "click_id" in texts:  # a row without the conversion's id links by its click
        texts["transaction_id"] = pl.coalesce(
            texts.get("transaction_id", pl.lit(None)), texts["click_id"]
        )
    exprs = [
        pl.col(LINE),
        timestamp(col("fired_at"), schema[fired], layouts, tz=timezone).alias("fired_at"),
        *[e.alias(c) for c, e in texts.items()],
    ]
    code = number(col("status_code"), schema[mapping["status_code"]])
    exprs.append(code.alias("__code"))
    if "status" in mapping:
        spellings = {**_statuses(preset), **statuses.mapping}
        st = normalise_status(col("status"), schema[mapping["status"]], spellings)
        exprs.append(st.alias("status"))
    checked = [c for c in ("fired_at", "status_code", "status") if c in mapping]
    exprs += [col(c).cast(pl.String).str.strip_chars().alias(_RAW + c) for c in checked]
    out = raw.select(exprs)
    for c in ("rule", "status", *TEXT):
        if c not in out.columns:
            out = out.with_columns(pl.lit(None, dtype=pl.String).alias(c))
    if rule is not None:  # the rule of rows that name none
        out = out.with_columns(pl.col("rule").fill_null(pl.lit(rule.strip())))
    whole = (pl.col("__code") == pl.col("__code").round(0)) & (
        (pl.col("__code") == 0) | pl.col("__code").is_between(100, 599)
    )
    out = out.with_columns(_reason(checked, whole, statuses.ignore).alias(_REASON))
    reasons = out[_REASON]
    out = out.with_columns(
        # 0 is how platforms (integr8) write "no response"
        pl.when(whole & (pl.col("__code") != 0))
        .then(pl.col("__code"))
        .cast(pl.Int32)
        .alias("status_code")
    ).drop("__code", _REASON, *[_RAW + c for c in checked])
    return out, reasons


def _statuses(preset: Preset | None) -> dict[str, str]:
    return dict(preset.statuses) if preset is not None else {}


def _layouts(values: pl.Series, first: tuple[str, ...]) -> tuple[str, ...] | None:
    """The timestamp layouts of a text column (a preset's ``first``), from one example
    per distinct shape."""
    if values.dtype != pl.String:
        return None
    v = values.str.strip_chars()
    examples = (
        v.filter(v.str.len_bytes() > 0)
        .to_frame("v")
        .group_by(shapes(pl.col("v")).alias("shape"))
        .agg(pl.col("v").first())["v"]
        .to_list()
    )
    if len(examples) > 50:  # free-form text: keep every layout
        return None
    return formats_for(examples, first) or first or None


def _reason(checked: Sequence[str], whole: pl.Expr, ignore: tuple[str, ...] = ()) -> pl.Expr:
    """Why a row is quarantined (its first problem), null for a good row; ``IGNORED`` for
    a row whose status the caller ignores."""

    def raw(c: str) -> pl.Expr:
        return pl.col(_RAW + c)

    def given(c: str) -> pl.Expr:
        return raw(c).str.len_bytes().fill_null(0) > 0

    cases = []
    if ignore and "status" in checked:
        cases.append(
            (raw("status").str.to_lowercase().is_in(ignore).fill_null(False), pl.lit(IGNORED))
        )
    cases += [
        (pl.col("transaction_id").is_null(), pl.lit("missing transaction_id")),
        (pl.col("fired_at").is_null() & ~given("fired_at"), pl.lit("missing fired_at")),
        (pl.col("fired_at").is_null(), pl.format("bad fired_at {}", _quoted(raw("fired_at")))),
        (
            given("status_code") & ~whole.fill_null(False),
            pl.format(
                "bad status_code {} (an HTTP status, 100-599, or 0 for no response)",
                _quoted(raw("status_code")),
            ),
        ),
    ]
    if "status" in checked:
        cases.append(
            (
                pl.col("status").is_null() & given("status"),
                pl.format(
                    "unknown status {} (valid: {})",
                    _quoted(raw("status")),
                    pl.lit(", ".join(STATUSES)),
                ),
            )
        )
    return first_of(cases, pl.lit(None, dtype=pl.String))


def _quoted(expr: pl.Expr) -> pl.Expr:
    return pl.concat_str(pl.lit("'"), expr.fill_null("").str.slice(0, 80), pl.lit("'"))


def empty_quarantine() -> pl.DataFrame:
    """No quarantined rows (the columns of ``QUARANTINE_SCHEMA``)."""
    return pl.DataFrame(schema=QUARANTINE_SCHEMA)


def _quarantine(src: Source, rows: pl.DataFrame, reasons: pl.Series) -> pl.DataFrame:
    """Quarantine rows (source, line, reason, raw JSON) of the export's unreadable rows."""
    rejected = src.rejected if src.rejected is not None else empty_quarantine()
    if rows.height == 0:
        return rejected
    bad = rows.select(
        pl.lit(src.label).alias("source"),
        pl.col(LINE).cast(pl.Int64).alias("line"),
        reasons.alias("reason"),
        pl.struct(pl.all().exclude(LINE)).struct.json_encode().alias("raw"),
    )
    return pl.concat([rejected, bad]).sort("line")
