"""Import a platform's postback-log export (CSV/Parquet) into ``postback_log``.

Header names of the common platforms are recognised (``Firing Time``, ``Transaction ID``,
``Response Code``, ``Error``, ``Server Response``, ``Postback Name``, ``URL`` …). Every row
is kept: rows are linked to dispatches later (reconcile), by rule + transaction id
(+ status when the export has it). Importing the same file twice adds nothing.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from pathlib import Path

import polars as pl

from .._errors import LogImportError, closest
from .._util import DISPATCH_KEY, dispatch_ids, first_line, number, text, timestamp
from ..events import normalise_header
from ._log import LogStore, open_log

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


@dataclass(frozen=True)
class ImportResult:
    """How many rows an import added, and how many cannot be linked to a dispatch."""

    path: Path
    run_id: str
    rows: int
    without_rule: int
    without_status: int
    already_imported: bool = False

    def __str__(self) -> str:
        if self.already_imported:
            return f"{self.path}: already imported (run {self.run_id}); nothing added"
        notes = []
        if self.without_rule:
            notes.append(f"{self.without_rule:,} without a postback name cannot be linked")
        if self.without_status:
            notes.append(
                f"{self.without_status:,} without a conversion status link by rule "
                "and transaction id"
            )
        tail = f" ({'; '.join(notes)})" if notes else ""
        return f"{self.path}: imported {self.rows:,} attempts as run {self.run_id}{tail}"


def read_export(path: str | Path) -> pl.DataFrame:
    """A platform export as log rows (``LOG_SCHEMA`` columns that it has)."""
    path = Path(path)
    if not path.exists():
        raise LogImportError(f"{path}: no such file")
    try:
        if path.suffix.lower() in (".parquet", ".pq"):
            raw = pl.read_parquet(path)
        else:
            raw = pl.read_csv(path, infer_schema=False, encoding="utf8-lossy")
    except (pl.exceptions.PolarsError, OSError) as exc:
        raise LogImportError(f"{path}: cannot read ({first_line(exc)})") from exc
    by_norm = {normalise_header(c): c for c in raw.columns}
    mapping: dict[str, str] = {}
    for col, aliases in HEADERS.items():
        for a in aliases:
            if a in by_norm and by_norm[a] not in mapping.values():
                mapping[col] = by_norm[a]
                break
    missing = [c for c in REQUIRED if c not in mapping]
    if missing:
        hints = {c: closest(c, raw.columns) for c in missing}
        raise LogImportError(
            f"{path}: no column for {', '.join(missing)}; columns found: "
            f"{', '.join(raw.columns)}"
            + "".join(f"; closest to {c}: {h!r}" for c, h in hints.items() if h)
        )
    schema = raw.schema
    out = raw.select(
        timestamp(pl.col(mapping["fired_at"]), schema[mapping["fired_at"]]).alias("fired_at"),
        *[
            text(pl.col(mapping[c]), schema[mapping[c]]).alias(c)
            for c in (
                "transaction_id",
                "error",
                "response_body",
                "rule",
                "url",
                "offer_id",
                "publisher_id",
                "status",
            )
            if c in mapping
        ],
        number(pl.col(mapping["status_code"]), schema[mapping["status_code"]])
        .cast(pl.Int32)
        .alias("status_code"),
    )
    bad = out.filter(pl.col("fired_at").is_null() | pl.col("transaction_id").is_null())
    if bad.height:
        line = out.with_row_index("line", 2).filter(
            pl.col("fired_at").is_null() | pl.col("transaction_id").is_null()
        )["line"][0]
        raise LogImportError(
            f"{path}: line {line}: {bad.height:,} rows lack a readable firing time or "
            "transaction id; fix them or remove them and import again"
        )
    return out


def _number_attempts(frame: pl.DataFrame, store: LogStore) -> pl.DataFrame:
    """Attempts numbered in firing order per dispatch (the store's ``DISPATCH_KEY``), after
    any the log already holds for it: a dispatch has one first attempt, which the audit's
    dispatch counts rely on."""
    return store.sql(
        f"""
        WITH keyed AS (SELECT *, {DISPATCH_KEY} AS __k FROM f),
        logged AS (
            SELECT dispatch_key AS __k, max(attempt) AS __base FROM postback_log
            WHERE dispatch_key IN (SELECT __k FROM keyed) GROUP BY 1)
        SELECT keyed.* EXCLUDE (__k, __i),
            (row_number() OVER (PARTITION BY __k ORDER BY fired_at, __i)
             + coalesce(__base, 0))::INTEGER AS attempt
        FROM keyed LEFT JOIN logged USING (__k) ORDER BY fired_at, __i""",
        f=frame.with_row_index("__i"),
    )


def import_log(path: str | Path, log: LogStore | str | Path | None = None) -> ImportResult:
    """Append a platform's export to the log as ``source='imported'`` attempts."""
    path = Path(path)
    store, owned = open_log(log)
    try:
        run_id = (
            "import-" + hashlib.sha256(path.read_bytes()).hexdigest()[:12] if path.exists() else ""
        )
        frame = read_export(path)
        if store.sql("SELECT count(*) FROM runs WHERE run_id = ?", [run_id]).item():
            return ImportResult(path, run_id, 0, 0, 0, already_imported=True)
        for c in ("rule", "url", "offer_id", "publisher_id", "status", "error", "response_body"):
            if c not in frame.columns:
                frame = frame.with_columns(pl.lit(None, dtype=pl.String).alias(c))
        code = pl.col("status_code")
        err = pl.col("error").fill_null("").str.to_lowercase()
        frame = frame.with_columns(
            dispatch_ids(frame),
            pl.lit(run_id).alias("run_id"),
            pl.when(code.is_between(200, 299))
            .then(pl.lit("delivered"))
            .when(code.is_null() & err.str.contains("timeout|timed out"))
            .then(pl.lit("timeout"))
            .when(code.is_null() & (err != ""))
            .then(pl.lit("connection_error"))
            .otherwise(pl.lit("failed"))
            .alias("outcome"),
            pl.col("url").str.extract(r"^[a-zA-Z]+://([^/?#]+)").str.to_lowercase().alias("host"),
            pl.lit("imported").alias("source"),
            pl.lit("GET").alias("method"),
            pl.col("response_body").str.slice(0, 1024),
        )
        frame = _number_attempts(frame, store)
        store.append(frame, check_attempts=False)
        store.record_import(
            run_id,
            str(path),
            frame.height,
            int((frame["outcome"] == "delivered").sum()),
            int((frame["outcome"] != "delivered").sum()),
        )
        return ImportResult(
            path,
            run_id,
            frame.height,
            int(frame["rule"].is_null().sum()),
            int(frame["status"].is_null().sum()),
        )
    finally:
        if owned:
            store.close()
