"""Import a platform's postback-log export (CSV, Parquet, NDJSON or a frame) into
``postback_log``, so audits and backfills cover what the platform fired itself: the
export is read and mapped by ``_export_read``; here its rows are numbered, appended as
one run and linked to the rules. Rows that cannot be read are quarantined (with their
line and reason); the others are imported. An attempt already in the log (same rule,
transaction id, firing time and response code) is not added again, so overlapping
exports can be imported one after the other.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TypeAlias

import polars as pl

from .._errors import LogImportError, closest
from .._util import DISPATCH_KEY, counted, dispatch_ids, masked_userinfo, render
from ..events import LINE, ArrowFrame
from ..rules import RuleSet, read_rules
from ._export_read import Statuses, empty_quarantine, read_rows
from ._link import EXAMPLES, resolve_rules, rule_key
from ._log import LogStore
from ._match import match_rules
from ._open import LogSource, open_log
from ._writer import log_writer


@dataclass(frozen=True)
class ImportResult:
    """What an import added, what it skipped as already in the log, what it quarantined
    (``quarantine``: source, line, reason, raw) and which rows cannot be linked to a
    dispatch (``unlinkable``: rows without a rule name, first examples)."""

    path: str
    run_id: str | None
    rows: int
    duplicates: int = 0
    delivered: int = 0
    without_rule: int = 0
    without_status: int = 0
    quarantine: pl.DataFrame = field(default_factory=empty_quarantine)
    unlinkable: pl.DataFrame = field(default_factory=pl.DataFrame)
    notes: tuple[str, ...] = ()

    @property
    def already_imported(self) -> bool:
        """Every readable row was in the log already: nothing was added."""
        return self.rows == 0 and self.duplicates > 0

    @property
    def quarantined(self) -> int:
        """Rows of the export that could not be read (see ``quarantine``)."""
        return self.quarantine.height

    def summary(self) -> str:
        """One line: attempts added, skipped as already in the log, quarantined."""
        if self.rows:
            head = (
                f"{self.path}: imported {counted(self.rows, 'attempt')} as run "
                f"{self.run_id} ({self.delivered:,} delivered, {self.rows - self.delivered:,} "
                "not)"
            )
        else:
            head = f"{self.path}: nothing added"
        if self.duplicates:
            head += f"; {self.duplicates:,} already in the log were skipped"
        if self.quarantined:
            q = self.quarantine.row(0, named=True)
            head += (
                f"; {counted(self.quarantined, 'row')} quarantined (first: line "
                f"{q['line']}: {q['reason']}; see .quarantine)"
            )
        return head

    def __str__(self) -> str:
        lines = [self.summary(), *(f"note: {n}" for n in self.notes)]
        if self.without_rule:
            lines.append(
                f"warning: {self.without_rule:,} "
                f"{'row names' if self.without_rule == 1 else 'rows name'} no rule and "
                "cannot be linked to a dispatch (pass --rule NAME, or --rules RULES to match "
                "rows by their URL, publisher and offer; rule=/rules= in Python; or map the "
                "export's postback-name column with --columns 'Name=rule'):"
            )
            for r in self.unlinkable.head(EXAMPLES).iter_rows(named=True):
                lines.append(f"  line {r['line']}: transaction {r['transaction_id']!r}")
            if self.without_rule > EXAMPLES:
                lines.append(f"  ... and {self.without_rule - EXAMPLES:,} more")
        if self.without_status:
            lines.append(
                f"note: {counted(self.without_status, 'row')} without a "
                "conversion status link by rule and transaction id"
            )
        return "\n".join(lines)

    def __repr__(self) -> str:
        return (
            f"ImportResult({self.path!r}, run_id={self.run_id!r}, added={self.rows:,}, "
            f"already_in_log={self.duplicates:,}, quarantined={self.quarantined:,}, "
            f"without_rule={self.without_rule:,})"
        )

    def _repr_html_(self) -> str:
        tables: list[tuple[str, pl.DataFrame]] = []
        if self.quarantined:
            tables.append(("Quarantined rows", self.quarantine))
        if self.without_rule:
            tables.append(("Rows without a rule (cannot be linked)", self.unlinkable))
        notes = str(self).splitlines()[1:]  # each note and warning on a line of its own
        return render("Import", self.summary(), tables, quarantined=self.quarantined, lines=notes)


def _new_attempts(frame: pl.DataFrame, store: LogStore) -> pl.DataFrame:
    """The rows of ``frame`` that are not in the log yet. An attempt is its rule (case and
    spaces aside), transaction id, firing time and response code; an export listing one
    attempt n times adds it up to n times, whatever was imported before."""
    key = ["__rk", "transaction_id", "fired_at", "status_code"]
    logged = store.sql(
        "SELECT rule, transaction_id, fired_at, status_code FROM postback_log "
        "SEMI JOIN t USING (transaction_id) WHERE source = 'imported'",
        t=frame.select(pl.col("transaction_id").unique()),
    )
    have = (
        logged.with_columns(rule_key(pl.col("rule")).alias("__rk"))
        .group_by(key)
        .agg(pl.len().alias("__have"))
    )
    return (
        frame.with_columns(rule_key(pl.col("rule")).alias("__rk"))
        .with_columns(pl.int_range(1, pl.len() + 1).over(key).alias("__n"))
        .join(have, on=key, how="left", nulls_equal=True, maintain_order="left")
        .filter(pl.col("__n") > pl.col("__have").fill_null(0))
        .drop("__rk", "__n", "__have")
    )


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


#: what ``import_log`` reads: a CSV/Parquet/NDJSON export file, or a Polars/pandas/Arrow
#: frame of one
ExportSource: TypeAlias = str | Path | pl.DataFrame | pl.LazyFrame | ArrowFrame


def import_log(
    path: ExportSource,
    log: LogSource = None,
    *,
    preset: str | None = None,
    rule: str | None = None,
    rename: Mapping[str, str] | None = None,
    encoding: str = "utf-8",
    timezone: str = "UTC",
    rules: RuleSet | str | Path | None = None,
    status_map: Mapping[str, str] | None = None,
    ignore_status: Sequence[str] | str | None = None,
) -> ImportResult:
    """Append a platform's postback-log export to the log as ``source='imported'`` rows.

    ``path``: a CSV/Parquet/NDJSON file (or a frame). ``preset``: the platform
    (``everflow``, ``affise``, ``cake``, ``keitaro``, ``tune``, ``voluum``, ``binom``,
    ``integr8``, or ``auto``); ``rule``: the postback rule of rows that name none (exports
    without a postback-name column); ``rules``: the rules file (or RuleSet): ``rule`` must
    be one of its rules, and a row naming no rule gets the one rule whose URL (host, path,
    fixed parameters), publishers, offers and status fit it; ``rename``: export header ->
    log column (either direction); ``timezone``: where firing times without an offset were
    written; ``status_map``/``ignore_status``: your own status spellings and statuses to
    leave out, as in ``read_events``; the ``statuses:`` of ``rules`` apply too, these two
    winning status by status (as on every command that reads events with a rules file).
    Unreadable rows are quarantined (see ``ImportResult.quarantine``), never the file;
    attempts already in the log are skipped.
    ``remove_import(run_id)`` takes an import back out.
    """
    ruleset = _rules(rules)
    if ruleset is not None and rule is not None:
        rule = _check_rule(rule, ruleset)
    statuses = _statuses(ruleset, status_map, ignore_status)
    export = read_rows(path, preset, rule, rename, encoding, timezone, statuses)
    frame = export.frame
    if ruleset is not None:
        named = resolve_rules(frame["rule"].unique().to_list(), ruleset.names)
        frame = frame.with_columns(pl.col("rule").replace(named) if named else pl.col("rule"))
        frame = frame.with_columns(match_rules(frame, ruleset).alias("rule"))
    store, owned = open_log(log)
    try:
        known = store.sql("SELECT DISTINCT rule FROM postback_log WHERE rule IS NOT NULL")
        # spell each rule as the log already does when only case or spaces differ
        same = resolve_rules(frame["rule"].unique().to_list(), known["rule"].to_list())
        frame = frame.with_columns(pl.col("rule").replace(same) if same else pl.col("rule"))
        fresh = _new_attempts(frame, store)
        duplicates = frame.height - fresh.height
        unlinkable = fresh.filter(pl.col("rule").is_null()).select(
            pl.col(LINE).cast(pl.Int64).alias("line"), "transaction_id", "fired_at", "status_code"
        )
        result = dict(
            path=export.label,
            duplicates=duplicates,
            without_rule=unlinkable.height,
            without_status=int(fresh["status"].is_null().sum()),
            quarantine=export.quarantine,
            unlinkable=unlinkable.head(EXAMPLES),
            notes=export.notes,
        )
        if fresh.height == 0:
            return ImportResult(run_id=None, rows=0, **result)  # type: ignore[arg-type]
        run_id = _run_id(store, export.digest)
        rows = _log_rows(fresh.drop(LINE), run_id)
        rows = _number_attempts(rows, store)
        store.append(_without_passwords(rows), check_attempts=False)
        delivered = int((rows["outcome"] == "delivered").sum())
        log_writer(store).record_import(
            run_id, export.label, rows.height, delivered, rows.height - delivered
        )
        return ImportResult(run_id=run_id, rows=rows.height, delivered=delivered, **result)  # type: ignore[arg-type]
    finally:
        if owned:
            store.close()


def _statuses(
    ruleset: RuleSet | None,
    status_map: Mapping[str, str] | None,
    ignore_status: Sequence[str] | str | None,
) -> Statuses:
    """The rules file's ``statuses:`` under the caller's ``status_map``/``ignore_status``
    (validated first, so a bad one is named as given), which win status by status."""
    given = Statuses.of(status_map, ignore_status)
    if ruleset is None or not ruleset.statuses:
        return given
    merged = ruleset.statuses.overridden(given.mapping, given.ignore)
    return Statuses.of(merged.status_map, merged.ignore_status)


def _rules(rules: RuleSet | str | Path | None) -> RuleSet | None:
    if rules is None or isinstance(rules, RuleSet):
        return rules
    if not Path(rules).exists():
        raise LogImportError(f"{rules}: no such rules file")
    return read_rules(rules)


def _check_rule(rule: str, rules: RuleSet) -> str:
    """``rule`` as the rules file spells it; a LogImportError naming the closest rule when
    the file has no such rule (a mistyped --rule would import rows that link nowhere)."""
    found = resolve_rules([rule.strip()], rules.names)
    if found:
        return found[rule.strip()]
    near = closest(rule, rules.names)
    raise LogImportError(
        f"--rule {rule!r}: {rules.source} has no such rule"
        + (f" (did you mean {near!r}?)" if near else "")
        + f"; its rules: {', '.join(rules.names)}"
    )


def remove_import(run_id: str, log: LogSource = None) -> int:
    """Take an import run back out of the log (its rows and its ``runs`` entry); returns
    the number of rows removed. Only imports can be removed: the log of what was sent is
    never rewritten."""
    store, owned = open_log(log)
    try:
        runs = store.sql("SELECT kind FROM runs WHERE run_id = ?", [run_id])
        if runs.height == 0 or runs["kind"][0] != "import":
            imports = store.sql(
                "SELECT run_id FROM runs WHERE kind = 'import' ORDER BY started_at DESC LIMIT 5"
            )["run_id"].to_list()
            what = "is not an import run" if runs.height else "is not in the log"
            raise LogImportError(
                f"{run_id!r} {what}; imports in the log: {', '.join(imports) or '(none)'}"
            )
        n = int(
            store.sql(
                "SELECT count(*) AS n FROM postback_log WHERE run_id = ? AND source = 'imported'",
                [run_id],
            )["n"][0]
        )
        log_writer(store).exec(
            "DELETE FROM postback_log WHERE run_id = ? AND source = 'imported'", [run_id]
        )
        log_writer(store).exec("DELETE FROM runs WHERE run_id = ? AND kind = 'import'", [run_id])
        return n
    finally:
        if owned:
            store.close()


def _run_id(store: LogStore, digest: str) -> str:
    """``import-<digest>``, numbered when that export was imported before (and something
    new was found in it since)."""
    base = f"import-{digest}"
    taken = set(
        store.sql("SELECT run_id FROM runs WHERE run_id LIKE ?", [base + "%"])["run_id"].to_list()
    )
    run_id, n = base, 1
    while run_id in taken:
        n += 1
        run_id = f"{base}-{n}"
    return run_id


def _log_rows(frame: pl.DataFrame, run_id: str) -> pl.DataFrame:
    """Imported attempts as log rows: dispatch id, run, outcome, host, source."""
    code = pl.col("status_code")
    err = pl.col("error").fill_null("").str.to_lowercase()
    return frame.with_columns(
        dispatch_ids(frame),
        pl.lit(run_id).alias("run_id"),
        pl.when(code.is_between(200, 299))
        .then(pl.lit("delivered"))
        # "Connection timed out", "connection refused": the partner was never reached
        .when(code.is_null() & err.str.contains("connect|refused|resolve|dns|unreachable"))
        .then(pl.lit("connection_error"))
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


def _without_passwords(rows: pl.DataFrame) -> pl.DataFrame:
    """Imported rows as the log keeps them: the password of a ``user:password@`` in the
    platform's URLs, errors and answers masked (``***``), and no credentials in the host."""
    text = [c for c in ("url", "error", "response_body") if c in rows.columns]
    return rows.with_columns(
        *(masked_userinfo(pl.col(c)) for c in text),
        pl.col("host").str.replace(r"^[^@]*@", ""),
    )
