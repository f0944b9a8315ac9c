"""``postback-lab log show|export|optimize|prune``, ``audit`` and ``import-log``: the
attempt log from a terminal (filtered the way the notebook explorer filters it), delivery
rates from it, and a platform's own log imported into it."""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import TYPE_CHECKING, Any

from .._errors import InputError
from ._inputs import open_any_log, open_log
from ._options import (
    columns_option,
    db_option,
    format_option,
    list_option,
    notify_option,
    rate_option,
    status_map_option,
    status_options,
    when_option,
)

# the stages load when a command runs (each imports them where it needs them), so the
# parser built from this module loads no polars, DuckDB or httpx
if TYPE_CHECKING:
    from ..auditing import AuditReport, LogFilter
    from ..sending import Alert
    from ..store import ImportResult


def add_log(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
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
        "-o",
        "--output",
        "--to",
        dest="to",
        metavar="PATH",
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
        help="text in the transaction id, dispatch id, URL, error, response body or headers",
    )


def add_audit(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    """The ``audit`` command."""
    s = sub.add_parser("audit", help="delivery failure rates from the log")
    db_option(s, delta=True)
    s.add_argument(
        "--by",
        default="rule",
        metavar="COL,...",
        help="group by these, comma-separated (rule): rule, publisher_id, offer_id, host, "
        "status_code, outcome, run_id, day, hour, week",
    )
    s.add_argument(
        "--since",
        metavar="T",
        help="only attempts fired at or after T (2026-11-01 or 2026-11-01T09:00Z; a time "
        "without an offset is in --timezone)",
    )
    s.add_argument("--until", metavar="T", help="only attempts fired before T")
    s.add_argument(
        "--timezone",
        default="UTC",
        metavar="ZONE",
        help="days, hours and weeks of --by, and --since/--until without an offset, in this "
        "time zone (UTC), e.g. America/New_York",
    )
    s.add_argument(
        "--format",
        choices=["table", "csv", "json"],
        default="table",
        help="table (for people), csv or json (one object per group)",
    )
    s.add_argument(
        "--fail-below",
        metavar="RATE",
        help="exit 1 naming the groups whose delivery rate is under RATE (0.95 or 95%%)",
    )
    notify_option(s)
    s.add_argument("--dry-run", action="store_true", help="print the alert --fail-below would post")
    s.set_defaults(func=cmd_audit)


def add_import_log(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    """The ``import-log`` command."""
    s = sub.add_parser("import-log", help="import a platform's postback-log export")
    s.add_argument("file", nargs="?", help="the export: CSV, Parquet or NDJSON")
    db_option(s)
    s.add_argument(
        "--source",
        metavar="PRESET",
        default="auto",
        help="the platform the export comes from: everflow, affise, cake, keitaro, tune, "
        "voluum, binom, integr8, or auto (guess from the headers; the default)",
    )
    s.add_argument(
        "--rule",
        metavar="NAME",
        help="the postback rule of rows that name none (exports without a Postback Name)",
    )
    s.add_argument(
        "--rules",
        metavar="RULES",
        help="postbacks.yaml: --rule must be one of its rules, rows naming no rule get the "
        "one rule whose URL (host, path, fixed parameters), publishers and offers fit, and "
        "its statuses: (map, ignore) read the export's statuses, under --status-map and "
        "--ignore-status",
    )
    s.add_argument(
        "--undo",
        metavar="RUN_ID",
        help="remove the rows of an earlier import run from the log instead of importing",
    )
    status_options(s)
    s.add_argument(
        "--columns",
        metavar="A=B,...",
        help="map export columns onto the log's, e.g. 'Sent At=fired_at,Pixel=rule'",
    )
    s.add_argument(
        "--timezone", default="UTC", help="time zone of times written without an offset (UTC)"
    )
    s.add_argument("--encoding", default="utf-8", help="text encoding of a CSV export (utf-8)")
    format_option(s, what="rows added, skipped, quarantined, the import run")
    s.set_defaults(func=cmd_import_log)


def log_filter(a: argparse.Namespace) -> LogFilter:
    """The LogFilter of the parsed flags."""
    from ..auditing import LogFilter

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


def cmd_log_show(a: argparse.Namespace) -> int:
    """Print the headline of the selection and its newest attempts."""
    from .._util import csv_safe, text_table
    from ..auditing import attempt_rows, count_rows, headline, readable_rows

    if a.limit < 0:
        raise InputError(f"--limit {a.limit}: give 0 or more rows")
    flt = log_filter(a)
    with open_log(a.db) as store:
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
    from ..auditing import LogFilter, export_format, export_rows
    from ..scale import export_log

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
    with open_log(a.db) as store:
        n = export_rows(store, a.to, flt, a.format)
    print(f"{n:,} attempts written to {a.to}")
    return 0


def cmd_log_optimize(a: argparse.Namespace) -> int:
    """Compact the Delta log's small files (and vacuum)."""
    from ..scale import optimize_log, table_uri

    m = optimize_log(a.table, vacuum=a.vacuum)
    print(
        f"{table_uri(a.table)}: compacted {m.get('numFilesRemoved', 0):,} files into "
        f"{m.get('numFilesAdded', 0):,}"
        + (f"; vacuumed {m['vacuumed']:,} files" if "vacuumed" in m else "")
    )
    return 0


def cmd_log_prune(a: argparse.Namespace) -> int:
    """Delete attempts fired before --before except delivered ones."""
    from ..auditing import prune

    with open_log(a.db, read_only=a.dry_run) as store:
        result = prune(store, a.before, dry_run=a.dry_run)
    print(result)
    return 0


def alert_below(report: AuditReport, rate: float) -> int:
    """Exit code 1 with one line on stderr naming the groups delivered under ``rate``
    (lowest first), else 0: for cron jobs and CI that page someone."""
    from .._util import cell

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
    from .._util import cell
    from ..sending import Alert

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


def cmd_audit(a: argparse.Namespace) -> int:
    """Print delivery failure rates from the log (table, CSV or JSON); with
    ``--fail-below`` exit 1 naming the groups delivered under that rate."""
    from .._util import csv_safe
    from ..auditing import METRICS, audit

    threshold = rate_option(a.fail_below) if a.fail_below is not None else None
    with open_any_log(a.db) as log:
        tz = a.timezone
        report = audit(
            log,
            by=a.by,
            since=when_option(a.since, "--since", tz),
            until=when_option(a.until, "--until", tz),
            timezone=tz,
        )
        if a.format == "json":
            print(report.to_json())
        elif a.format == "csv":
            print(csv_safe(report.frame.select(*report.by, *METRICS)).write_csv(), end="")
        else:
            print(report)
    if threshold is None:
        if a.notify or a.dry_run:
            raise InputError("--notify and --dry-run go with --fail-below RATE")
        return 0
    code = alert_below(report, threshold)
    alert = below_alert(report, threshold)
    if alert is not None and a.dry_run:
        print(f"alert (dry run, not posted): {alert.body()}", file=sys.stderr)
    elif alert is not None and a.notify:
        from ..sending import post_alert, targets_of

        for problem in post_alert(alert, targets_of(a.notify)):
            print(f"warning: {problem}", file=sys.stderr)
    return code


def cmd_import_log(a: argparse.Namespace) -> int:
    """Import a platform's postback-log export into the log; unreadable rows are
    quarantined (counted, the first shown), never the whole file. Exit 1 when rows name
    no rule (they cannot be linked to a dispatch; ``--undo RUN_ID`` takes the import
    back). ``--undo RUN_ID`` removes an earlier import instead."""
    from ..store import import_log, remove_import

    if a.undo is not None:
        if a.file is not None:
            raise InputError("--undo RUN_ID removes an import: give no FILE with it")
        if not a.db.exists():
            raise InputError(f"{a.db}: no such log")
        n = remove_import(a.undo, a.db)
        if a.format == "json":
            print(json.dumps({"undone": a.undo, "removed": n, "log": str(a.db)}))
        else:
            print(f"removed import {a.undo}: {n:,} rows")
        return 0
    if a.file is None:
        raise InputError("import-log needs the export FILE (or --undo RUN_ID)")
    result = import_log(
        a.file,
        a.db,
        preset=a.source,
        rule=a.rule,
        rules=a.rules,
        rename=columns_option(a.columns),
        encoding=a.encoding,
        timezone=a.timezone,
        status_map=status_map_option(a.status_map),
        ignore_status=list_option(a.ignore_status),
    )
    print(json.dumps(import_summary(result, a.db)) if a.format == "json" else result)
    q = result.quarantine
    for r in q.head(5).iter_rows(named=True):
        print(f"quarantined: {r['source']} line {r['line']}: {r['reason']}", file=sys.stderr)
    if q.height > 5:
        print(f"quarantined: ... and {q.height - 5:,} more rows", file=sys.stderr)
    if result.without_rule and result.run_id is not None:
        print(
            f"error: {result.without_rule:,} imported rows cannot be linked to a dispatch; "
            f"name their rule and import again, after removing this import with "
            f"postback-lab import-log --undo {result.run_id} --db {a.db}",
            file=sys.stderr,
        )
        return 1
    return 0


def import_summary(result: ImportResult, db: Path) -> dict[str, Any]:
    """``import-log --format json``: what the import added, skipped and quarantined."""
    return {
        "file": str(result.path),
        "run_id": result.run_id,
        "log": str(db),
        "rows": result.rows,
        "delivered": result.delivered,
        "duplicates": result.duplicates,
        "quarantined": result.quarantined,
        "without_rule": result.without_rule,
        "without_status": result.without_status,
        "notes": list(result.notes),
    }
