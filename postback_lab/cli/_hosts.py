"""``postback-lab hosts [resume|pause HOST]``: the health of each partner host as the log
keeps it across runs, and the operator's hand on it."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from .._errors import InputError
from ._inputs import read_log
from ._options import db_option


def add_hosts(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    """The ``hosts`` command: list health; ``resume HOST``; ``pause HOST``."""
    s = sub.add_parser(
        "hosts",
        help="health of each partner host across runs; resume or pause one",
        description="List the hosts the log keeps health for (paused by the circuit breaker "
        "or by hand, or resumed), or resume/pause one. A paused host's postbacks are logged "
        "'paused' without a request until a probe after the cool-down is delivered or it is "
        "resumed.",
    )
    db_option(s)
    s.add_argument(
        "--format",
        choices=["table", "csv", "json"],
        default="table",
        help="table (for people), csv or json (one object per host)",
    )
    verbs = s.add_subparsers(dest="verb", metavar="VERB")
    v = verbs.add_parser("resume", help="resume a paused host: the next send or backfill sends")
    v.add_argument("host", help="the paused host, as 'postback-lab hosts' lists it")
    _db_after(v)
    v = verbs.add_parser("pause", help="pause a host by hand until it is resumed")
    v.add_argument("host", help="the partner host, e.g. track.partner.example")
    v.add_argument("--reason", default="paused by hand", help="why (shown in the log)")
    v.add_argument("--notify", action="append", metavar="URL", help="post an alert here")
    _db_after(v)
    s.set_defaults(func=cmd_hosts)


def _db_after(v: argparse.ArgumentParser) -> None:
    """``--db`` also after the verb (``hosts resume HOST --db LOG``), not resetting one
    given before it."""
    v.add_argument("--db", type=Path, default=argparse.SUPPRESS, help="the DuckDB log file")


def cmd_hosts(a: argparse.Namespace) -> int:
    """List host health, or resume/pause one host."""
    from .._util import text_table
    from ..store import LogStore, host_health, pause_host, resume_host, retry_backlog

    if not a.db.exists():
        raise InputError(f"{a.db}: no such log; send, backfill or import-log first")
    if a.verb == "resume":
        with LogStore(a.db) as store:
            if not resume_host(store, a.host, "resumed by hand"):
                raise InputError(f"{a.host} is not paused in {a.db}; 'postback-lab hosts' lists")
        print(f"{a.host} resumed: the next send or backfill sends its postbacks")
        return 0
    if a.verb == "pause":
        with LogStore(a.db) as store:
            pause_host(store, a.host, a.reason, by_hand=True)
        print(f"{a.host} paused ({a.reason}) until 'postback-lab hosts resume {a.host}'")
        if a.notify:  # the sender's alerts (and HTTP client) only when one is posted
            from ..sending import host_paused_alert, post_alert, targets_of

            alert = host_paused_alert({a.host: (a.reason, 0)})
            for problem in post_alert(alert, targets_of(a.notify)):
                print(f"warning: {problem}", file=sys.stderr)
        return 0
    with read_log(a.db) as store:
        health = host_health(store)
        backlog = retry_backlog(store)
    if a.format == "csv":
        print(health.write_csv(), end="")
    elif a.format == "json":
        print(health.write_json())
    elif health.height == 0:
        print(f"{a.db}: every host is healthy (none was ever paused)")
    else:
        print(text_table(health))
        paused = int((health["state"] == "paused").sum())
        print(f"{paused} of {health.height} hosts paused")
    if a.format == "table" and backlog.height:
        print(f"{backlog.height:,} retries wait for a later run (next due {backlog['due_at'][0]})")
    return 0
