"""``postback-lab log show|export|prune``: the attempt log from a terminal, filtered the
way the notebook explorer filters it."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from ._errors import InputError
from ._util import cell, text_table
from .auditing import (
    AuditReport,
    LogFilter,
    attempt_rows,
    count_rows,
    export_rows,
    headline,
    prune,
)
from .store import LogStore


def add_log_parser(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    """The ``log`` command and its subcommands."""
    log = sub.add_parser("log", help="show, export or prune attempt rows of the log")
    verbs = log.add_subparsers(dest="verb", metavar="VERB", required=True)

    s = verbs.add_parser("show", help="the newest attempts matching the filters, as a table")
    _db(s)
    _filters(s)
    s.add_argument("--limit", type=int, default=50, help="rows to show (50)")
    s.add_argument("--format", choices=["table", "csv", "json"], default="table")
    s.set_defaults(func=cmd_log_show)

    s = verbs.add_parser("export", help="write the attempts matching the filters to a file")
    _db(s)
    s.add_argument("--to", required=True, type=Path, help="PATH.csv, PATH.parquet (or a table)")
    s.add_argument(
        "--format",
        choices=["csv", "parquet", "delta"],
        help="csv or parquet (by default from the suffix of --to; none: a Delta Lake table)",
    )
    _filters(s)
    s.set_defaults(func=cmd_log_export)

    s = verbs.add_parser(
        "prune",
        help="delete attempts fired before T, keeping delivered ones (nothing is re-sent)",
    )
    _db(s)
    s.add_argument("--before", required=True, metavar="T", help="ISO date or time (UTC)")
    s.add_argument("--dry-run", action="store_true", help="say what would be deleted")
    s.set_defaults(func=cmd_log_prune)


def _db(s: argparse.ArgumentParser) -> None:
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
    ):
        g.add_argument(flag, dest=dest, action="append", metavar="VALUE", help=what)
    g.add_argument("--status-code", type=int, action="append", metavar="N", help="HTTP status")
    g.add_argument("--since", metavar="T", help="attempts fired at or after T")
    g.add_argument("--until", metavar="T", help="attempts fired before T")
    g.add_argument(
        "--search", metavar="TEXT", help="text in the transaction id, dispatch id, URL or error"
    )


def log_filter(a: argparse.Namespace) -> LogFilter:
    """The LogFilter of the parsed flags."""
    return LogFilter.of(
        rule=a.rule,
        outcome=a.outcome,
        publisher_id=a.publisher_id,
        offer_id=a.offer_id,
        host=a.host,
        status_code=a.status_code,
        since=a.since,
        until=a.until,
        search=a.search,
    )


def _open(db: Path, *, read_only: bool = True) -> LogStore:
    if not db.exists():
        raise InputError(f"{db}: no such log; send, backfill or import-log first")
    return LogStore(db, read_only=read_only)


def cmd_log_show(a: argparse.Namespace) -> int:
    """Print the headline of the selection and its newest attempts."""
    if a.limit < 0:
        raise InputError(f"--limit {a.limit}: give 0 or more rows")
    flt = log_filter(a)
    with _open(a.db) as store:
        rows = attempt_rows(store, flt, limit=a.limit)
        total = count_rows(store, flt)
        head = headline(store, flt)
    if a.format == "csv":
        print(rows.write_csv(), end="")
        return 0
    if a.format == "json":
        print(rows.write_json())
        return 0
    print(head.text())
    if rows.height:
        table = rows.rename(
            {
                "fired_at": "fired (UTC)",
                "transaction_id": "transaction",
                "publisher_id": "publisher",
                "status_code": "code",
                "latency_ms": "ms",
            }
        )
        print(text_table(table))
    more = f"; --limit {total} shows all" if total > rows.height else ""
    print(f"{rows.height:,} of {total:,} attempts shown, newest first{more}")
    return 0


def cmd_log_export(a: argparse.Namespace) -> int:
    """Write the matching attempts (every log column) to CSV or Parquet."""
    with _open(a.db) as store:
        n = export_rows(store, a.to, log_filter(a), a.format)
    print(f"{n:,} attempts written to {a.to}")
    return 0


def cmd_log_prune(a: argparse.Namespace) -> int:
    """Delete attempts fired before --before except delivered ones."""
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
