"""``postback-lab``: the command line.

Exit codes: 0 success; 1 some postbacks were not delivered; 2 bad input (a wrong
argument, file, rule or column, or a ``--db`` file that cannot be used); 3 an internal
error (a bug: the traceback is written to a file to report); 130 interrupted (Ctrl-C),
143 terminated (SIGTERM, handled like Ctrl-C). Errors are
one sentence on stderr; ``--debug`` shows the traceback instead.
"""

from __future__ import annotations

import argparse
import os
import signal
import sys
import tempfile
import threading
import traceback
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path
from types import FrameType

from ._errors import DeliveryError, InputError, StoreError
from ._hosts_cli import add_hosts_parser
from ._log_cli import add_log_parser, db_option
from ._util import first_line
from ._version import __version__

EXIT_OK, EXIT_FAILED, EXIT_INPUT, EXIT_INTERNAL, EXIT_INTERRUPTED = 0, 1, 2, 3, 130
EXIT_TERMINATED = 143  # SIGTERM, handled like Ctrl-C


class _Commands:
    """The command bodies of ``_commands``, imported when a command runs, not when the
    parser is built: ``--help`` and ``--version`` load no polars, DuckDB or httpx.
    ``c.cmd_plan`` is a function that imports ``_commands`` and calls its ``cmd_plan``."""

    def __getattr__(self, name: str) -> Callable[[argparse.Namespace], int]:
        def command(a: argparse.Namespace) -> int:
            from . import _commands

            return int(getattr(_commands, name)(a))

        command.__name__ = command.__qualname__ = name
        return command


c = _Commands()


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog="postback-lab",
        description="Find which postbacks should have fired, backfill the missed ones "
        "exactly once, and audit delivery failures.",
    )
    p.add_argument("--debug", action="store_true", help="show tracebacks on errors")
    p.add_argument("--version", action="version", version=f"postback-lab {__version__}")
    sub = p.add_subparsers(dest="command", metavar="COMMAND", required=True)

    s = sub.add_parser("demo", help="whole flow on bundled sample data against a local receiver")
    s.add_argument("--out", type=Path, default=Path("demo-output"), help="where to write files")
    s.set_defaults(func=c.cmd_demo)

    s = sub.add_parser("plan", help="evaluate rules over events into a dispatch plan")
    s.add_argument(
        "events",
        nargs="+",
        help="event files (CSV, Parquet, NDJSON, globs) or duckdb:file.duckdb::table",
    )
    s.add_argument("--rules", required=True, help="postbacks.yaml")
    s.add_argument("-o", "--output", type=Path, help="write the plan as Parquet")
    s.add_argument("--explain", action="store_true", help="why events did not fire, per rule")
    g = s.add_argument_group("scaling out (the plan is written as a folder of Parquet parts)")
    g.add_argument(
        "--engine",
        choices=["local", "spark"],
        help="plan in buckets of transactions: local (a process per core) or spark "
        "(EVENTS are Parquet paths or URIs Spark reads; -o any folder or URI it writes)",
    )
    g.add_argument(
        "--partitions",
        type=int,
        metavar="N",
        help="buckets to plan (local: one per core by default; more, less memory each)",
    )
    _window(s)
    _reading(s)
    s.set_defaults(func=c.cmd_plan)

    s = sub.add_parser(
        "reconcile",
        help="compare the plan with the log: delivered, failed, missed (reads the log only)",
    )
    s.add_argument("events", nargs="+", help="event files (CSV, Parquet, NDJSON, globs)")
    s.add_argument("--rules", required=True, help="postbacks.yaml")
    db_option(s)
    s.add_argument(
        "--format",
        choices=["table", "json", "csv"],
        default="table",
        help="table (per rule), json (the totals) or csv (one row per postback)",
    )
    _window(s)
    _reading(s)
    s.set_defaults(func=c.cmd_reconcile)

    s = sub.add_parser("why", help="why each rule did or did not fire for one transaction")
    s.add_argument("transaction_id", metavar="TRANSACTION", help="the transaction id")
    s.add_argument("--events", nargs="+", required=True, metavar="E", help="event files it is in")
    s.add_argument("--rules", required=True, help="postbacks.yaml")
    _reading(s)
    s.set_defaults(func=c.cmd_why)

    s = sub.add_parser("send", help="fire a plan, logging every attempt")
    s.add_argument("plan", type=Path, help="PLAN.parquet from 'postback-lab plan -o'")
    db_option(s)
    s.add_argument("--dry-run", action="store_true", help="render and log, open no socket")
    s.add_argument("--concurrency", type=int, default=64, help="requests in flight (64)")
    s.add_argument("--per-host", type=int, default=8, help="requests in flight per host (8)")
    s.add_argument("--rate", type=float, default=None, help="requests per second per host")
    _retries(s)
    s.add_argument("--ignore-due", action="store_true", help="fire now, ignoring due_at")
    s.add_argument("--no-progress", action="store_true", help="no progress bar")
    s.add_argument(
        "--shard",
        metavar="K/N",
        help="send only the hosts of shard K of N (hosts split by a stable hash; run one "
        "send per shard, each with its own --db)",
    )
    s.add_argument(
        "--central",
        metavar="LOG",
        help="a log whose delivered dispatches count as done (delta:PATH of the exported "
        "logs, or a DuckDB file), so changing the number of shards never re-sends",
    )
    s.add_argument(
        "--events",
        nargs="+",
        metavar="SOURCE",
        help="fresh events, read again before each due batch fires: a delayed postback "
        "whose conversion changed status within its delay is not fired (firing rule 7)",
    )
    s.add_argument(
        "--rules",
        metavar="RULES",
        help="the rules file the plan came from: its retry: schedules and alerts: targets apply",
    )
    _guards(s)
    _reading(s)
    s.set_defaults(func=c.cmd_send)

    s = sub.add_parser("backfill", help="plan, reconcile with the log, send only what is missing")
    s.add_argument(
        "events",
        nargs="+",
        help="event files (CSV, Parquet, NDJSON, globs) or duckdb:file.duckdb::table",
    )
    s.add_argument("--rules", required=True, help="postbacks.yaml")
    db_option(s)
    s.add_argument("--since", help="only postbacks due at or after T (ISO date/time)")
    s.add_argument("--until", help="only postbacks due before T")
    s.add_argument(
        "--dry-run", action="store_true", help="show and log what would be sent, send nothing"
    )
    s.add_argument("--concurrency", type=int, default=64, help="requests in flight (64)")
    s.add_argument("--per-host", type=int, default=8, help="requests in flight per host (8)")
    s.add_argument("--rate", type=float, default=None, help="requests per second per host")
    _retries(s, default="short within 1m")
    s.add_argument("--no-progress", action="store_true", help="no progress bar")
    s.add_argument(
        "--allow-unlinked",
        action="store_true",
        help="send even when imported log rows link to no dispatch but could be deliveries "
        "of what this backfill sends (by default it stops, exit 1, naming them)",
    )
    g = s.add_argument_group(
        "targeted replay (repeat a flag or separate values by commas; the count that "
        "matches is shown before anything is sent)"
    )
    for flag, what in (
        ("--rule", "rule name"),
        ("--publisher", "publisher id"),
        ("--offer", "offer id"),
        ("--host", "partner host"),
    ):
        g.add_argument(flag, action="append", metavar="VALUE", help=f"only this {what}")
    g.add_argument(
        "--status-code",
        action="append",
        metavar="CODE",
        help="only postbacks whose last attempt answered CODE: 503, 5xx, 500-504",
    )
    g.add_argument(
        "--resend-delivered",
        type=int,
        metavar="N",
        help="also re-send the N delivered postbacks that match, on purpose (N must equal "
        "how many match: a --dry-run shows it); needs --reason",
    )
    g.add_argument("--reason", metavar="TEXT", help="why delivered postbacks go again (logged)")
    _reading(s)
    _guards(s)
    s.set_defaults(func=c.cmd_backfill)

    s = sub.add_parser("audit", help="delivery failure rates from the log")
    db_option(s)
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
    s.add_argument("--log", help="read this log instead of --db: delta:PATH or a DuckDB file")
    _notify(s)
    s.add_argument("--dry-run", action="store_true", help="print the alert --fail-below would post")
    s.set_defaults(func=c.cmd_audit)

    add_log_parser(sub)
    add_hosts_parser(sub)

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
        help="postbacks.yaml: --rule must be one of its rules, and rows naming no rule get "
        "the one rule whose URL (host, path, fixed parameters), publishers and offers fit",
    )
    s.add_argument(
        "--undo",
        metavar="RUN_ID",
        help="remove the rows of an earlier import run from the log instead of importing",
    )
    _status_flags(s)
    s.add_argument(
        "--columns",
        metavar="A=B,...",
        help="map export columns onto the log's, e.g. 'Sent At=fired_at,Pixel=rule'",
    )
    s.add_argument(
        "--timezone", default="UTC", help="time zone of times written without an offset (UTC)"
    )
    s.add_argument("--encoding", default="utf-8", help="text encoding of a CSV export (utf-8)")
    s.set_defaults(func=c.cmd_import_log)

    s = sub.add_parser(
        "test",
        help="test-fire one rule once and show the exact request and answer",
        description="Render one postback of one rule from real or sample data, fire it once "
        "(or show it with --dry-run) and log the attempt with the outcome 'test', which never "
        "counts as delivered: the real send still happens.",
    )
    s.add_argument("--rules", required=True, help="postbacks.yaml")
    s.add_argument("--rule", required=True, metavar="NAME", help="the rule to test-fire")
    which = s.add_mutually_exclusive_group(required=True)
    which.add_argument("--transaction-id", metavar="T", help="a transaction of --events")
    which.add_argument("--sample", action="store_true", help="a made-up event that fires the rule")
    s.add_argument("--events", nargs="+", metavar="E", help="event files (with --transaction-id)")
    s.add_argument("--dry-run", action="store_true", help="show the request; send and log nothing")
    s.add_argument(
        "--real-transaction",
        action="store_true",
        help="fire --transaction-id, a real conversion, at the partner (with test ids; "
        "refused without this flag)",
    )
    db_option(s)
    _reading(s)
    s.set_defaults(func=c.cmd_test)

    s = sub.add_parser("receiver", help="a local HTTP receiver that records postbacks")
    s.add_argument("--host", default="127.0.0.1", help="address to listen on (127.0.0.1)")
    s.add_argument("--port", type=int, default=8765, help="port to listen on (8765)")
    s.add_argument(
        "--fail-rate",
        type=float,
        default=0.0,
        metavar="P",
        help="share of requests answered 500, 0-1 (0)",
    )
    s.add_argument("--latency", type=float, default=0.0, help="milliseconds per response")
    s.add_argument("--seed", type=int, default=0, help="seed of the failures (0)")
    s.set_defaults(func=c.cmd_receiver)

    s = sub.add_parser("sample", help="write sample events, rules and a platform log")
    s.add_argument(
        "-o", "--output", type=Path, default=Path("sample"), help="folder to write to (sample)"
    )
    s.add_argument("--rows", type=int, default=2_000, help="conversions to generate")
    s.add_argument("--seed", type=int, default=0, help="seed of the random data (0)")
    s.add_argument(
        "--base-url",
        default="http://127.0.0.1:8765",
        help="where the sample rules send (a local receiver's URL)",
    )
    s.set_defaults(func=c.cmd_sample)
    return p


def _window(s: argparse.ArgumentParser) -> None:
    """``--since --until --rule --publisher``: which postbacks of the plan (plan, reconcile)."""
    g = s.add_argument_group("window and scope (postbacks of the plan)")
    g.add_argument(
        "--since",
        metavar="T",
        help="only postbacks due at or after T (2026-11-01, 2026-11-01T09:00; a time "
        "without an offset is in --timezone)",
    )
    g.add_argument("--until", metavar="T", help="only postbacks due before T")
    g.add_argument("--rule", action="append", metavar="NAME", help="only this rule (repeatable)")
    g.add_argument(
        "--publisher", action="append", metavar="ID", help="only this publisher (repeatable)"
    )


def _reading(s: argparse.ArgumentParser) -> None:
    """How to read the events and the rules (plan and backfill)."""
    g = s.add_argument_group("reading events and rules")
    g.add_argument(
        "--source",
        metavar="PRESET",
        help="the platform the export comes from: everflow, affise, cake, keitaro, tune, "
        "voluum, binom, integr8, or auto (guess from the headers)",
    )
    g.add_argument(
        "--columns",
        metavar="A=B,...",
        help="map export columns onto ours, e.g. 'Conversion Date=occurred_at,Aff=publisher_id' "
        "(also renames extra columns: 'Conversion IP=ip')",
    )
    g.add_argument(
        "--event-type", help="the type of every row: conversion, event, click, impression"
    )
    g.add_argument("--sep", help="CSV separator (sniffed from the header by default)")
    g.add_argument(
        "--date-format",
        metavar="LAYOUT",
        help="layout of the time column, e.g. '%%d/%%m/%%Y %%H:%%M' (detected by default)",
    )
    g.add_argument(
        "--timezone",
        default="UTC",
        help="time zone of times written without an offset (UTC)",
    )
    g.add_argument("--encoding", default="utf-8", help="text encoding of CSV events (utf-8)")
    _status_flags(g)
    g.add_argument(
        "--dialect",
        metavar="PLATFORM",
        help="the macro syntax of the rules' URLs when pasted from a platform: cake, tune, "
        "everflow, affise, keitaro, voluum, binom (a rule's own dialect: wins)",
    )


def _status_flags(g: argparse.ArgumentParser | argparse._ArgumentGroup) -> None:
    """Your own status spellings and statuses to leave out (wherever events are read)."""
    g.add_argument(
        "--status-map",
        metavar="FROM=TO,...",
        help="your statuses as ours, e.g. 'sale=approved,trash=rejected,rebill=approved' "
        "(TO: approved, rejected or pending; wins over the platform's spellings)",
    )
    g.add_argument(
        "--ignore-status",
        metavar="S,...",
        help="leave out rows with these statuses, e.g. 'ping,test' (counted in a note)",
    )


def _notify(s: argparse.ArgumentParser) -> None:
    s.add_argument(
        "--notify",
        action="append",
        metavar="URL",
        help="post alerts to this webhook (Slack/Teams-compatible JSON; repeatable), besides "
        "the alerts: targets of the rules file",
    )


def _retries(s: argparse.ArgumentParser, default: str = "default within 10m") -> None:
    """The retry schedule of one run (send and backfill; ``default``: what applies
    without the flags)."""
    schedule, _, window = default.partition(" within ")
    s.add_argument(
        "--retries",
        default=None,
        help=f"retry schedule ({schedule}): default (5s, 5m, 30m, 2h), short (0.5s, 2s, 5s), "
        "none, a number of retries N, or delays like 1s,5s,30s (overrides the rules' "
        "retry: schedules)",
    )
    s.add_argument(
        "--retry-for",
        default=None,
        help=f"retry only within this time ({window}); later retries are left to a "
        "backfill (overrides the rules' retry: for)",
    )
    _notify(s)
    s.add_argument(
        "--workers",
        type=int,
        default=0,
        metavar="N",
        help="processes that send, each a shard of the hosts, while this one writes the "
        "log (0, the default: one per core, at most one per host and per 2,000 postbacks)",
    )
    s.add_argument(
        "--pause-after",
        type=int,
        default=10,
        metavar="N",
        help="pause a host for the run after N failed attempts in a row, or 70%% of >= 10 "
        "in 5 minutes (10; 0: never); its remaining postbacks are logged 'paused'",
    )


def _guards(s: argparse.ArgumentParser) -> None:
    s.add_argument(
        "--allow-host",
        action="append",
        dest="allow_hosts",
        metavar="HOST",
        help="only send to these hosts (repeatable; *.example.com works)",
    )
    s.add_argument(
        "--deny-private",
        action="store_true",
        help="refuse hosts that resolve to private, loopback or link-local addresses",
    )


def main(argv: Sequence[str] | None = None) -> int:
    """Run one command; returns its exit code (see the module docstring)."""
    parser = build_parser()
    a = parser.parse_args(argv)
    terminated: list[int] = []
    try:
        with _sigterm_as_interrupt(terminated):
            return int(a.func(a))
    except BrokenPipeError:
        # the reader of our output went away (``postback-lab plan ... | head``): the work
        # is done; silence the rest of the output instead of a traceback at exit
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return EXIT_OK
    except KeyboardInterrupt:
        if terminated:
            print("terminated; completed attempts are in the log", file=sys.stderr)
            return EXIT_TERMINATED
        print("interrupted; completed attempts are in the log", file=sys.stderr)
        return EXIT_INTERRUPTED
    except Exception as exc:
        if a.debug:
            raise
        if isinstance(exc, (InputError, StoreError, DeliveryError)):
            print(f"postback-lab: error: {exc}", file=sys.stderr)
            return EXIT_FAILED if isinstance(exc, DeliveryError) else EXIT_INPUT
        print(
            f"postback-lab: internal error, please report: {first_line(exc)} "
            f"({_write_traceback(exc, argv)})",
            file=sys.stderr,
        )
        return EXIT_INTERNAL


@contextmanager
def _sigterm_as_interrupt(got: list[int]) -> Iterator[None]:
    """SIGTERM (``kill``, a stopping container or service) acts as Ctrl-C does: a send
    finishes its log, marks its run cancelled and removes its journal; exit code 143."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return

    def on_term(signum: int, frame: FrameType | None) -> None:
        got.append(signum)
        handler = signal.getsignal(signal.SIGINT)
        if callable(handler):  # asyncio's (cancels the running send) or Python's default
            handler(signal.SIGINT, frame)
        else:
            raise KeyboardInterrupt

    previous = signal.signal(signal.SIGTERM, on_term)
    try:
        yield
    finally:
        signal.signal(signal.SIGTERM, previous)


def _write_traceback(exc: BaseException, argv: Sequence[str] | None) -> str:
    """Write the traceback of an unexpected error to a file in the temp folder; says where
    (or why it could not)."""
    args = list(sys.argv[1:] if argv is None else argv)
    try:
        fd, path = tempfile.mkstemp(prefix="postback-lab-traceback-", suffix=".txt")
        with os.fdopen(fd, "w", encoding="utf-8") as f:
            f.write(f"postback-lab {__version__}, Python {sys.version.split()[0]}\n")
            f.write(f"command: postback-lab {' '.join(args)}\n\n")
            traceback.print_exception(exc, file=f)
    except OSError as err:
        return f"the traceback could not be written: {first_line(err)}; run with --debug"
    return f"traceback written to {path}"


if __name__ == "__main__":
    sys.exit(main())
