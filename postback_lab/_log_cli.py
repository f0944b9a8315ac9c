"""``postback-lab log show|export|prune``: the attempt log from a terminal, filtered the
way the notebook explorer filters it."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import TYPE_CHECKING

from ._errors import InputError

# the stages load when a command runs (each imports them where it needs them), so the
# parser built from this module loads no polars, DuckDB or httpx
if TYPE_CHECKING:
    from .auditing import AuditReport, LogFilter
    from .sending import Alert
    from .store import LogReader


def add_log_parser(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    """The ``log`` command and its subcommands."""
    log = sub.add_parser("log", help="show, export or prune attempt rows of the log")
    verbs = log.add_subparsers(dest="verb", metavar="VERB", required=True)

    s = verbs.add_parser("show", help="the newest attempts matching the filters, as a table")
    db_option(s)
    _filters(s)
    s.add_argument("--limit", type=int, default=50, help="rows to show (50)")
    s.add_argument(
        "--format",
        choices=["table", "csv", "json"],
        default="table",
        help="table (the headline, then the rows), csv or json (the rows)",
    )
    s.set_defaults(func=cmd_log_show)

    s = verbs.add_parser(
        "export",
        help="write the attempts matching the filters to CSV/Parquet, or append the whole log "
        "to a central Delta Lake table exactly once",
    )
    db_option(s)
    s.add_argument(
        "--to",
        required=True,
        help="PATH.csv, PATH.parquet, or a Delta table folder or URI (s3://, gs://, az://)",
    )
    s.add_argument(
        "--format",
        choices=["csv", "parquet", "delta"],
        help="by default from the suffix of --to: .csv, .parquet, anything else a Delta table",
    )
    s.add_argument(
        "--batch-rows",
        type=int,
        default=500_000,
        help="Delta: attempts per commit (500000)",
    )
    _filters(s)
    s.set_defaults(func=cmd_log_export)

    s = verbs.add_parser("optimize", help="compact the small files of a Delta log")
    s.add_argument("table", help="the Delta table folder or URI (delta: prefix allowed)")
    s.add_argument(
        "--vacuum", action="store_true", help="then delete files older versions no longer need"
    )
    s.set_defaults(func=cmd_log_optimize)

    s = verbs.add_parser(
        "prune",
        help="delete attempts fired before T, keeping delivered ones (nothing is re-sent)",
    )
    db_option(s)
    s.add_argument("--before", required=True, metavar="T", help="ISO date or time (UTC)")
    s.add_argument("--dry-run", action="store_true", help="say what would be deleted")
    s.set_defaults(func=cmd_log_prune)


def db_option(s: argparse.ArgumentParser) -> None:
    """``--db``: the log file a command reads or writes (every command that has a log)."""
    s.add_argument(
        "--db",
        type=Path,
        default=Path("postback_lab.duckdb"),
        help="the DuckDB log file (postback_lab.duckdb)",
    )


def _filters(s: argparse.ArgumentParser) -> None:
    g = s.add_argument_group("filters (repeat a flag for several values)")
    for flag, dest, what in (
        ("--rule", "rule", "rule name"),
        ("--outcome", "outcome", "delivered, failed, timeout, connection_error, cancelled…"),
        ("--publisher", "publisher_id", "publisher id"),
        ("--offer", "offer_id", "offer id"),
        ("--host", "host", "partner host"),
        ("--status", "status", "conversion status: approved, rejected, pending"),
        ("--event-type", "event_type", "event type: conversion, event, click, impression"),
        ("--goal", "goal", "goal (event name)"),
    ):
        g.add_argument(flag, dest=dest, action="append", metavar="VALUE", help=what)
        g.add_argument(
            "--not-" + flag.removeprefix("--"),
            dest="not_" + dest,
            action="append",
            metavar="VALUE",
            help=f"leave out this {what.split(':')[0].split(',')[0]}",
        )
    g.add_argument("--status-code", type=int, action="append", metavar="N", help="HTTP status")
    g.add_argument(
        "--not-status-code",
        type=int,
        action="append",
        metavar="N",
        help="leave out this HTTP status",
    )
    g.add_argument("--since", metavar="T", help="attempts fired at or after T")
    g.add_argument("--until", metavar="T", help="attempts fired before T")
    g.add_argument(
        "--search",
        metavar="TEXT",
        help="text in the transaction id, dispatch id, URL, error or response body",
    )


def log_filter(a: argparse.Namespace) -> LogFilter:
    """The LogFilter of the parsed flags."""
    from .auditing import LogFilter

    return LogFilter.of(
        rule=a.rule,
        outcome=a.outcome,
        publisher_id=a.publisher_id,
        offer_id=a.offer_id,
        host=a.host,
        status_code=a.status_code,
        status=a.status,
        event_type=a.event_type,
        goal=a.goal,
        not_event_type=a.not_event_type,
        not_goal=a.not_goal,
        not_rule=a.not_rule,
        not_outcome=a.not_outcome,
        not_publisher_id=a.not_publisher_id,
        not_offer_id=a.not_offer_id,
        not_host=a.not_host,
        not_status=a.not_status,
        not_status_code=a.not_status_code,
        since=a.since,
        until=a.until,
        search=a.search,
    )


def _open(db: Path, *, read_only: bool = True) -> LogReader:
    from .store import LogStore

    if not db.exists():
        raise InputError(f"no such log: {db}; send or import-log create one")
    return read_log(db) if read_only else LogStore(db)


def read_log(db: Path) -> LogReader:
    """The log opened read-only; while another process writes it, a snapshot copy (said on
    stderr, so the table on stdout stays clean)."""
    from .auditing import open_for_reading

    store, _, note = open_for_reading(db)
    if note:
        print(f"note: {note}", file=sys.stderr)
    return store


def cmd_log_show(a: argparse.Namespace) -> int:
    """Print the headline of the selection and its newest attempts."""
    from ._util import csv_safe, text_table
    from .auditing import attempt_rows, count_rows, headline, readable_rows

    if a.limit < 0:
        raise InputError(f"--limit {a.limit}: give 0 or more rows")
    flt = log_filter(a)
    with _open(a.db) as store:
        rows = attempt_rows(store, flt, limit=a.limit)
        total = count_rows(store, flt)
        head = headline(store, flt)
    if a.format == "csv":
        print(csv_safe(rows).write_csv(), end="")
        return 0
    if a.format == "json":
        print(rows.write_json())
        return 0
    print(head.text())
    if rows.height:
        table = readable_rows(rows)
        print(text_table(table))
    more = f"; --limit {total} shows all" if total > rows.height else ""
    print(f"{rows.height:,} of {total:,} attempts shown, newest first{more}")
    return 0


def cmd_log_export(a: argparse.Namespace) -> int:
    """Write the matching attempts (every log column) to CSV or Parquet, or append the whole
    log to a Delta Lake table exactly once."""
    from .auditing import LogFilter, export_format, export_rows
    from .scale import export_log

    flt = log_filter(a)
    if export_format(Path(a.to), a.format) == "delta":
        if flt != LogFilter():
            raise InputError(
                "a Delta export appends the whole log (exactly once, so it can be re-run); "
                "filters apply to .csv and .parquet exports only"
            )
        if not a.db.exists():
            raise InputError(f"no such log: {a.db}; send or import-log create one")
        print(export_log(a.db, a.to, batch_rows=a.batch_rows))
        return 0
    with _open(a.db) as store:
        n = export_rows(store, a.to, flt, a.format)
    print(f"{n:,} attempts written to {a.to}")
    return 0


def cmd_log_optimize(a: argparse.Namespace) -> int:
    """Compact the Delta log's small files (and vacuum)."""
    from .scale import optimize_log, table_uri

    m = optimize_log(a.table, vacuum=a.vacuum)
    print(
        f"{table_uri(a.table)}: compacted {m.get('numFilesRemoved', 0):,} files into "
        f"{m.get('numFilesAdded', 0):,}"
        + (f"; vacuumed {m['vacuumed']:,} files" if "vacuumed" in m else "")
    )
    return 0


def cmd_log_prune(a: argparse.Namespace) -> int:
    """Delete attempts fired before --before except delivered ones."""
    from .auditing import prune

    with _open(a.db, read_only=a.dry_run) as store:
        result = prune(store, a.before, dry_run=a.dry_run)
    print(result)
    return 0


def rate_option(text: str) -> float:
    """``--fail-below 0.95`` or ``95%`` as a fraction in [0, 1]."""
    raw = text.strip()
    try:
        value = float(raw.removesuffix("%")) / (100 if raw.endswith("%") else 1)
    except ValueError:
        value = -1.0
    if not 0 <= value <= 1:
        raise InputError(f"--fail-below {text!r}: give a delivery rate like 0.95 or 95%")
    return value


def alert_below(report: AuditReport, rate: float) -> int:
    """Exit code 1 with one line on stderr naming the groups delivered under ``rate``
    (lowest first), else 0: for cron jobs and CI that page someone."""
    from ._util import cell

    low = report.below(rate)
    if low.height == 0:
        return 0
    groups = []
    for row in low.iter_rows(named=True):
        name = ", ".join(f"{k}={cell(row[k])}" for k in report.by) or "all"
        groups.append(
            f"{name} {row['delivery_rate']:.1%} ({row['delivered']:,} of "
            f"{row['dispatches']:,} postbacks)"
        )
    noun = "group" if low.height == 1 else "groups"
    print(
        f"postback-lab: {low.height} {noun} below {rate:.1%} delivered: " + "; ".join(groups),
        file=sys.stderr,
    )
    return 1


def below_alert(report: AuditReport, rate: float) -> Alert | None:
    """The ``audit.below`` alert naming the groups delivered under ``rate`` and their
    rates, or None when every group reaches it."""
    from ._util import cell
    from .sending import Alert

    low = report.below(rate)
    if low.height == 0:
        return None
    items, names = [], []
    for row in low.iter_rows(named=True):
        name = ", ".join(f"{k}={cell(row[k])}" for k in report.by) or "all"
        names.append(f"{name} {row['delivery_rate']:.1%}")
        items.append(
            {
                **{k: row[k] for k in report.by},
                "delivery_rate": row["delivery_rate"],
                "delivered": row["delivered"],
                "dispatches": row["dispatches"],
            }
        )
    return Alert(
        "audit.below",
        f"postback-lab audit: {low.height} group(s) below {rate:.1%} delivered: "
        + "; ".join(names),
        tuple(items),
    )
