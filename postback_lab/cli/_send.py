"""``postback-lab send``, ``backfill`` and ``test``: fire a plan, send what the log is
missing, test-fire one rule; every attempt logged. Each body imports the stages it uses
when it runs."""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Callable
from dataclasses import replace
from pathlib import Path
from typing import TYPE_CHECKING, Any

from .._errors import InputError, did_you_mean
from .._util import counted
from ._inputs import Stages, events_of, read_and_plan
from ._options import (
    db_option,
    format_option,
    reading_options,
    retry_option,
    seconds_option,
    sending_options,
    since_option,
    until_option,
)

if TYPE_CHECKING:
    from ..auditing import BackfillResult
    from ..rules import RuleSet
    from ..sending import SendOptions, SendResult


def add_send(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    """The ``send`` command."""
    s = sub.add_parser("send", help="fire a plan, logging every attempt")
    s.add_argument("plan", type=Path, help="PLAN.parquet from 'postback-lab plan -o'")
    db_option(s)
    s.add_argument("--dry-run", action="store_true", help="render and log, open no socket")
    s.add_argument("--ignore-due", action="store_true", help="fire now, ignoring due_at")
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
    format_option(s, what="the run, its postbacks by outcome, attempts, the log")
    sending_options(s)
    reading_options(s)
    s.set_defaults(func=cmd_send)


def add_backfill(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    """The ``backfill`` command."""
    s = sub.add_parser("backfill", help="plan, reconcile with the log, send only what is missing")
    s.add_argument(
        "events",
        nargs="+",
        help="event files (CSV, Parquet, NDJSON, globs) or duckdb:file.duckdb::table",
    )
    s.add_argument("--rules", required=True, help="postbacks.yaml")
    db_option(s)
    s.add_argument(
        "--since",
        help="only postbacks due at or after T (ISO date/time; without an offset, in --timezone)",
    )
    s.add_argument("--until", help="only postbacks due before T")
    s.add_argument(
        "--dry-run", action="store_true", help="show and log what would be sent, send nothing"
    )
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
        help="only postbacks whose last answer (reconcile's last_status_code; paused rows "
        "left out) was CODE: 503, 5xx, 500-504",
    )
    g.add_argument(
        "--resend-delivered",
        type=int,
        metavar="N",
        help="also re-send the N delivered postbacks that match, on purpose (N must equal "
        "how many match: a --dry-run shows it); needs --reason",
    )
    g.add_argument("--reason", metavar="TEXT", help="why delivered postbacks go again (logged)")
    format_option(s, what="the log before, what was picked, the run")
    sending_options(s, retry_default="short within 1m")
    reading_options(s)
    s.set_defaults(func=cmd_backfill)


def add_test(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    """The ``test`` command."""
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
    reading_options(s)
    s.set_defaults(func=cmd_test)


def cmd_send(a: argparse.Namespace) -> int:
    """Fire a plan file, logging every attempt."""
    from ..plan import read_plan
    from ..rules import read_rules
    from ..sending import rereader, send_sync

    say = _sayer(a)
    plan = read_plan(a.plan)
    if a.shard:
        from ..scale import shard_plan

        plan = shard_plan(plan, a.shard)
        hosts = plan.frame["host"].n_unique()
        say(f"shard {a.shard}: {counted(len(plan), 'postback')} to {counted(hosts, 'host')}")
    done = 0
    if a.central:
        from ..scale import delivered_elsewhere

        plan, done = delivered_elsewhere(plan, a.central)
        if done:
            say(f"{done:,} dispatches already delivered in {a.central}: not sent again")
    rules = read_rules(a.rules, dialect=a.dialect) if a.rules else None
    options = send_options(a, rules, timing="now" if a.ignore_due else "due")
    if rules is not None:  # the rules' pause: thresholds apply to the plan's hosts
        plan = replace(plan, rules=rules)
    events = None if not a.events else rereader(a.events, lambda paths: events_of(a, paths))
    result = send_sync(plan, a.db, options=options, events=events)
    if a.format == "json":
        print(json.dumps({**send_summary(result), "delivered_elsewhere": done}))
    else:
        print(result)
    return 1 if result.has_failures else 0


def cmd_backfill(a: argparse.Namespace) -> int:
    """Plan, reconcile with the log, send only what is missing (or what the targeted-replay
    flags pick); the count that matches is printed before anything is sent."""
    from ..auditing import BACKFILL_DEFAULTS, backfill_sync

    stages = Stages(False if a.no_progress else None)
    plan = read_and_plan(a, stages)
    options = send_options(a, plan.rules, BACKFILL_DEFAULTS)
    if stages.enabled:
        print(f"reconciling with {a.db}, then sending what is missing ...", file=sys.stderr)
    result = backfill_sync(
        plan,
        a.db,
        since=since_option(a),  # a time without an offset is in --timezone, as for plan
        until=until_option(a),
        options=options,
        allow_unlinked=a.allow_unlinked,
        rule=a.rule,
        publisher=a.publisher,
        offer=a.offer,
        host=a.host,
        status_code=a.status_code,
        resend_delivered=a.resend_delivered,
        reason=a.reason,
        announce=_sayer(a),
    )
    if a.format == "json":
        print(json.dumps(backfill_summary(result)))
    else:
        print(result)
    return 1 if result.has_failures else 0


def _sayer(a: argparse.Namespace) -> Callable[[str], None]:
    """Prints a line of what a run is doing: on stdout, or on stderr with ``--format json``
    (stdout then carries the one JSON object only)."""
    out = sys.stderr if a.format == "json" else sys.stdout

    def say(line: str) -> None:
        print(line, file=out, flush=True)

    return say


def send_summary(result: SendResult) -> dict[str, Any]:
    """``send --format json`` (and ``sent`` of ``backfill``): the run and its postbacks
    by final state."""
    return {
        "run_id": result.run_id,
        "state": result.state,
        "log": str(result.log_path),
        "postbacks": result.planned - result.skipped_delivered,
        "delivered": result.delivered,
        "failed": result.failed,
        "dry_run": result.rehearsed,
        "cancelled": result.cancelled,
        "paused": result.paused,
        "superseded": result.superseded,
        "skipped_delivered": result.skipped_delivered,
        "waiting": result.waiting,
        "carried": result.carried,
        "resent": result.resent,
        "attempts": result.attempts,
        "seconds": round(result.seconds, 3),
        "hosts_paused": list(result.hosts_paused),
        "has_failures": result.has_failures,
    }


def backfill_summary(result: BackfillResult) -> dict[str, Any]:
    """``backfill --format json``: the log before (as ``reconcile --format json``), what
    the backfill picked, and the run that sent it (None when nothing was sent)."""
    rec = result.reconciliation
    return {
        "before": {**rec.totals, "dispatches": rec.dispatches.height},
        "to_send": len(result.to_send),
        "resend_delivered": result.resend,
        "unlinked": 0 if result.unlinked is None else result.unlinked.height,
        "sent": None if result.sent is None else send_summary(result.sent),
        "has_failures": result.has_failures,
    }


def send_options(
    a: argparse.Namespace,
    rules: RuleSet | None,
    defaults: SendOptions | None = None,
    **more: Any,
) -> SendOptions:
    """The sending flags of ``_options.sending_options`` (plus ``more``), validated:
    ``--retries``/``--retry-for`` override the rules' ``retry:`` schedules (without them:
    the retry schedule and window of ``defaults``, backfill's those of the API's
    ``backfill``; send's the default schedule within 10 minutes); ``--notify`` adds to
    the rules' ``alerts:`` targets."""
    from datetime import timedelta

    from ..sending import Breaker, SendOptions, rule_policies, targets_of

    if defaults is None:  # send: the default schedule within 10 minutes
        defaults = SendOptions(max_duration=timedelta(minutes=10))

    if a.pause_after < 0:
        raise InputError(f"--pause-after {a.pause_after}: write 0 (never) or more")
    breaker = Breaker(consecutive=a.pause_after) if a.pause_after else Breaker.off()
    retry = retry_option(a.retries) if a.retries else defaults.retry
    window = seconds_option(a.retry_for) if a.retry_for else None
    policies = (
        rule_policies(
            rules,
            schedule=retry if a.retries is not None else None,
            within=window,
        )
        if rules is not None
        else {}
    )
    return SendOptions(
        retry=retry,
        max_duration=defaults.max_duration if window is None else window,
        rule_retry=policies or None,
        notify=targets_of(a.notify, rules.alerts if rules is not None else ()),
        breaker=breaker,
        workers=None if a.workers == 0 else a.workers,
        dry_run=a.dry_run,
        concurrency=a.concurrency,
        per_host=a.per_host,
        rate=a.rate,
        progress=not a.no_progress,
        allow_hosts=a.allow_hosts,
        deny_private=a.deny_private,
        **more,
    )


def cmd_test(a: argparse.Namespace) -> int:
    """Test-fire one rule: exit 0 when the partner accepted it, 1 when not."""
    from ..rules import read_rules
    from ..sending import test_rule_sync

    if a.transaction_id is not None and not a.events:
        raise InputError("--transaction-id needs the events it comes from: add --events FILE")
    events = events_of(a, a.events) if a.events else None
    rules = read_rules(
        a.rules, event_columns=None if events is None else events.frame.columns, dialect=a.dialect
    )
    if a.rule not in rules.names:
        raise InputError(f"{a.rules}: no rule named {a.rule!r}{did_you_mean(a.rule, rules.names)}")
    result = test_rule_sync(
        rules[a.rule],
        events,
        transaction_id=a.transaction_id,
        log=a.db,
        dry_run=a.dry_run,
        real_transaction=a.real_transaction,
    )
    print(result)
    return 0 if result.ok or a.dry_run else 1
