"""The bodies of the CLI commands: each takes the parsed arguments and returns an exit
code (0 done, 1 some postbacks were not delivered); errors are raised."""

from __future__ import annotations

import argparse
import json
import os
import re
import sys
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import replace
from datetime import UTC, datetime
from typing import Any
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

import polars as pl

from . import sample
from ._errors import InputError, did_you_mean
from ._log_cli import alert_below, below_alert, rate_option, read_log
from ._util import counted, csv_safe, parse_duration, parse_when
from .auditing import METRICS, audit, backfill_sync, reconcile
from .events import Events, read_events
from .plan import (
    Plan,
    WrittenPlan,
    build_plan,
    event_columns,
    parquet_files,
    read_plan,
    write_plan,
)
from .receiver import Receiver, serve_forever
from .rules import RuleSet, read_rules
from .scale import (
    PartitionedPlan,
    delivered_elsewhere,
    open_delta_log,
    plan_partitioned,
    shard_plan,
    table_uri,
)
from .sending import (
    Breaker,
    Retry,
    SendOptions,
    post_alert,
    rereader,
    rule_policies,
    send_sync,
    targets_of,
    test_rule_sync,
)
from .store import LogStore, import_log, remove_import


def cmd_sample(a: argparse.Namespace) -> int:
    """Write sample events, rules and a platform log export."""
    paths = sample.write(a.output, a.rows, seed=a.seed, base_url=a.base_url)
    for name, p in paths.items():
        print(f"{name}: {p}", flush=True)
    return 0


def cmd_demo(a: argparse.Namespace) -> int:
    """The whole story on the bundled sample data against a local receiver."""
    out = a.out
    out.mkdir(parents=True, exist_ok=True)
    db = out / "postback_lab.duckdb"
    for stale in out.glob("postback_lab.duckdb*"):
        stale.unlink()
    os.environ.setdefault("CRM_TOKEN", "demo-token")
    src = sample.data_dir()
    step = _steps()
    with Receiver(fail_rate=0.08, seed=7) as rx:
        rules = read_rules(sample.rules_yaml(rx.url))
        step(f"Sample events from {src / 'events.csv'}")
        events = read_events(src / "events.csv")
        print(events)
        step("Plan: which postbacks should have fired")
        plan = build_plan(events, rules)
        print(plan)
        print()
        print(plan.explain())
        with LogStore(db) as log:
            step("The platform's own log: import its export and reconcile")
            print(import_log(src / "platform_log.csv", log))
            print(reconcile(plan, log))
            step(
                "Backfill the missed and failed postbacks to a receiver on 127.0.0.1 "
                "(8% injected failures)"
            )
            result = backfill_sync(plan, log, retry=Retry.short(), progress=False)
            print(result.sent)
            step("Run it again: nothing is sent twice")
            again = backfill_sync(plan, log, retry=Retry.short(), progress=False)
            print(again.sent)
            step("Audit delivery per rule")
            report = audit(log, by=["rule"])
            print(report)
            chart = report.save_chart(str(out / "audit_chart.html"))
        print(f"\nreceiver got {len(rx.requests):,} requests; log: {db}; chart: {chart}")
    return 0


def _steps() -> Callable[[str], None]:
    """``step(title)`` prints the next numbered heading of the demo."""
    n = iter(range(1, 100))

    def step(title: str) -> None:
        print(f"\n== {next(n)}. {title}")

    return step


class Stages:
    """One line per step of a long command on stderr, so a 10M-row run is never silent:
    what it is doing, then how much and how long. Terminals only (pipes stay clean)."""

    def __init__(self, enabled: bool | None = None) -> None:
        self.enabled = sys.stderr.isatty() if enabled is None else enabled

    @contextmanager
    def __call__(self, doing: str) -> Iterator[dict[str, str]]:
        """``with stages("reading events") as done: ...; done["what"] = "10 rows"``."""
        done: dict[str, str] = {}
        if self.enabled:
            print(f"{doing} ...", end="", file=sys.stderr, flush=True)
        started = time.perf_counter()
        try:
            yield done
        finally:
            if self.enabled:
                took = time.perf_counter() - started
                print(f" {done.get('what', 'done')} ({took:.1f} s)", file=sys.stderr)


def columns_option(text: str | None) -> dict[str, str]:
    """``--columns 'Conversion Date=occurred_at,Aff=publisher_id'`` as a mapping."""
    out: dict[str, str] = {}
    for item in (text or "").split(","):
        if not item.strip():
            continue
        src, eq, dst = item.partition("=")
        if not eq or not src.strip() or not dst.strip():
            raise InputError(
                f"--columns {text!r}: write SOURCE=COLUMN pairs separated by commas, like "
                "'Conversion Date=occurred_at'"
            )
        out[src.strip()] = dst.strip()
    return out


def _events(a: argparse.Namespace, paths: Any) -> Events:
    """Read events with the reading flags of ``a`` (--source, --columns, ...)."""
    return read_events(paths, **_read_options(a))


def _read_options(a: argparse.Namespace) -> dict[str, Any]:
    """The reading flags of ``a`` as ``read_events`` options."""
    return dict(
        source=a.source,
        columns=columns_option(a.columns),
        event_type=a.event_type,
        encoding=a.encoding,
        sep=a.sep,
        date_format=a.date_format,
        timezone=a.timezone,
        status_map=status_map_option(a.status_map),
        ignore_status=list_option(a.ignore_status),
    )


def status_map_option(text: str | None) -> dict[str, str]:
    """``--status-map 'sale=approved,trash=rejected'`` as a mapping (checked by the reader)."""
    out: dict[str, str] = {}
    for item in (text or "").split(","):
        if not item.strip():
            continue
        src, eq, dst = item.partition("=")
        if not eq or not src.strip() or not dst.strip():
            raise InputError(
                f"--status-map {text!r}: write FROM=TO pairs separated by commas, like "
                "'sale=approved,trash=rejected'"
            )
        out[src.strip()] = dst.strip()
    return out


def list_option(text: str | None) -> list[str]:
    """``--ignore-status 'ping,test'`` as a list."""
    return [v.strip() for v in (text or "").split(",") if v.strip()]


def cmd_test(a: argparse.Namespace) -> int:
    """Test-fire one rule: exit 0 when the partner accepted it, 1 when not."""
    if a.transaction_id is not None and not a.events:
        raise InputError("--transaction-id needs the events it comes from: add --events FILE")
    events = _events(a, a.events) if a.events else None
    rules = read_rules(
        a.rules, columns=None if events is None else events.frame.columns, dialect=a.dialect
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


def _read_and_plan(a: argparse.Namespace, stages: Stages) -> Plan:
    events, rules = _read(a, stages)
    with stages("planning") as done:
        plan = build_plan(events, rules)
        done["what"] = f"{len(plan):,} postbacks"
    return plan


def _read(a: argparse.Namespace, stages: Stages) -> tuple[Events, RuleSet]:
    """The events and the rules of ``plan``/``backfill``, read with the reading flags."""
    if not os.path.exists(a.rules):  # before a long read of the events
        raise InputError(f"{a.rules}: no such rules file")
    with stages("reading events") as done:
        events = _events(a, a.events)
        # one contiguous copy (the read batches let go): planning on the batches of a
        # 10M-row read gathers across them and peaks 1.5 GB higher (6.1 vs 4.5 GB)
        events = replace(events, frame=events.frame.rechunk())
        done["what"] = f"{events.frame.height:,} rows"
    # the events' columns let every rule problem, unknown macros included, show at once
    rules = read_rules(a.rules, columns=events.frame.columns, dialect=a.dialect)
    for note in events.notes:
        print(f"note: {note}", file=sys.stderr)
    _warn_quarantine(events)
    return events, rules


def cmd_plan(a: argparse.Namespace) -> int:
    """Build a plan, print it (and why events did not fire), write it as Parquet."""
    if a.engine is not None or a.partitions is not None:
        return _plan_partitioned(a)
    if a.output is None or _scoped(a):
        plan = _scope(_read_and_plan(a, Stages()), a)
        if a.output is not None:
            plan.write_parquet(a.output)
            print(plan)
            print(f"plan written to {a.output}")
            return 0
        print(plan)
        if a.explain:
            print()
            print(plan.explain())
        return 0
    # with -o the plan goes to Parquet rule by rule as it is built, never whole in memory
    stages = Stages()
    events, rules = _read(a, stages)
    with stages("planning") as done:
        written = write_plan(events, rules, a.output)
        done["what"] = f"{len(written):,} postbacks"
    return _written(written, a.explain)


def _scoped(a: argparse.Namespace) -> bool:
    """Whether ``plan``/``reconcile`` were given a window or a scope."""
    return any(getattr(a, k, None) for k in ("since", "until", "rule", "publisher"))


def when_option(text: str | None, name: str, timezone: str = "UTC") -> datetime | None:
    """A ``--since``/``--until`` value as an instant: a time written without an offset is
    a wall-clock time of ``timezone`` (``--timezone``), else UTC."""
    at = parse_when(text, name=name)
    if at is None or text is None or timezone == "UTC" or _OFFSET.search(text.strip()):
        return at
    try:
        zone = ZoneInfo(timezone)
    except (ZoneInfoNotFoundError, ValueError):
        raise InputError(
            f"--timezone {timezone!r}: not a time zone (e.g. America/New_York)"
        ) from None
    return at.replace(tzinfo=zone).astimezone(UTC)


_OFFSET = re.compile(r"(Z|[+-]\d\d:?\d\d)$", re.IGNORECASE)


def _scope(plan: Plan, a: argparse.Namespace) -> Plan:
    """The plan's postbacks due in ``[--since, --until)`` of the ``--rule`` and
    ``--publisher`` values given (each repeatable); a rule the plan's rules do not have is
    an InputError naming the closest."""
    tz = getattr(a, "timezone", "UTC") or "UTC"
    lo, hi = when_option(a.since, "--since", tz), when_option(a.until, "--until", tz)
    conds = []
    if lo is not None:
        conds.append(pl.col("due_at") >= lo)
    if hi is not None:
        conds.append(pl.col("due_at") < hi)
    if a.rule:
        names = plan.rules.names if plan.rules is not None else plan.frame["rule"].unique()
        for r in a.rule:
            if r not in names:
                raise InputError(f"--rule {r!r}: no such rule{did_you_mean(r, list(names))}")
        conds.append(pl.col("rule").is_in(a.rule))
    if a.publisher:
        conds.append(pl.col("publisher_id").is_in([str(p) for p in a.publisher]))
    return plan.filter(*conds)


def cmd_reconcile(a: argparse.Namespace) -> int:
    """Plan from the events, then compare with the log: delivered, failed, missed per rule
    (a read: the log must exist and is not changed)."""
    if not a.db.exists():
        raise InputError(f"{a.db}: no such log; send, backfill or import-log first")
    plan = _scope(_read_and_plan(a, Stages(False)), a)
    with read_log(a.db) as log:
        rec = reconcile(plan, log, since=_since(a), until=_until(a))
    if a.format == "json":
        print(json.dumps({**rec.totals, "dispatches": rec.dispatches.height}))
    elif a.format == "csv":
        print(rec.dispatches.drop("body", strict=False).write_csv(), end="")
    else:
        print(rec)
    return 0


def _since(a: argparse.Namespace) -> datetime | None:
    return when_option(a.since, "--since", getattr(a, "timezone", "UTC") or "UTC")


def _until(a: argparse.Namespace) -> datetime | None:
    return when_option(a.until, "--until", getattr(a, "timezone", "UTC") or "UTC")


def cmd_why(a: argparse.Namespace) -> int:
    """Every rule's verdict for one transaction of the events."""
    events, rules = _read(a, Stages(False))
    plan = build_plan(events, rules)
    print(plan.why(a.transaction_id))
    return 0


def _plan_partitioned(a: argparse.Namespace) -> int:
    """``plan --engine local|spark --partitions N -o FOLDER``: planned in buckets of
    transactions, written as Parquet parts."""
    if a.output is None:
        raise InputError("--engine/--partitions write the plan in parts: name a folder with -o")
    if a.partitions is not None and a.partitions < 1:
        raise InputError(f"--partitions {a.partitions}: must be 1 or more")
    stages = Stages()
    if a.engine == "spark":
        if not os.path.exists(a.rules):
            raise InputError(f"{a.rules}: no such rules file")
        rules = read_rules(a.rules, dialect=a.dialect)
        with stages("planning on Spark") as done:
            result = plan_partitioned(
                a.events, rules, table_uri(a.output), engine="spark", partitions=a.partitions
            )
            done["what"] = f"{len(result):,} postbacks"
    elif (files := parquet_files(a.events)) is not None:
        # Parquet: the pool reads the files into the buckets; this process holds no events
        if not os.path.exists(a.rules):
            raise InputError(f"{a.rules}: no such rules file")
        options = _read_options(a)
        columns = event_columns(files, **options)
        rules = read_rules(a.rules, columns=columns, dialect=a.dialect)
        with stages("reading and planning in buckets") as done:
            result = plan_partitioned(files, rules, a.output, partitions=a.partitions, **options)
            done["what"] = f"{len(result):,} postbacks"
        for note in result.notes:
            print(f"note: {note}", file=sys.stderr)
        _warn_quarantine(result)
    else:
        events, rules = _read(a, stages)
        with stages("planning in buckets") as done:
            result = plan_partitioned(events, rules, a.output, partitions=a.partitions)
            done["what"] = f"{len(result):,} postbacks"
    return _written(result, a.explain)


def _written(plan: WrittenPlan | PartitionedPlan, explain: bool) -> int:
    """What ``plan -o`` prints: the plan's summary per rule, why events did not fire
    (``--explain``) and where it went."""
    print(plan)
    if explain:
        print()
        print(plan.explain())
    print(f"plan written to {plan.path}")
    return 0


def cmd_backfill(a: argparse.Namespace) -> int:
    """Plan, reconcile with the log, send only what is missing (or what the targeted-replay
    flags pick); the count that matches is printed before anything is sent."""
    stages = Stages(False if a.no_progress else None)
    plan = _read_and_plan(a, stages)
    options = _send_options(a, plan.rules)
    if stages.enabled:
        print(f"reconciling with {a.db}, then sending what is missing ...", file=sys.stderr)
    result = backfill_sync(
        plan,
        a.db,
        since=a.since,
        until=a.until,
        options=options,
        allow_unlinked=a.allow_unlinked,
        rule=a.rule,
        publisher=a.publisher,
        offer=a.offer,
        host=a.host,
        status_code=a.status_code,
        resend_delivered=a.resend_delivered,
        reason=a.reason,
        announce=lambda line: print(line, flush=True),
    )
    print(result)
    return 1 if result.has_failures else 0


def _send_options(a: argparse.Namespace, rules: RuleSet | None, **more: Any) -> SendOptions:
    """The sending flags shared by ``send`` and ``backfill`` (plus ``more``), validated:
    ``--retries``/``--retry-for`` override the rules' ``retry:`` schedules; ``--notify``
    adds to the rules' ``alerts:`` targets."""
    if a.pause_after < 0:
        raise InputError(f"--pause-after {a.pause_after}: write 0 (never) or more")
    breaker = Breaker(consecutive=a.pause_after) if a.pause_after else Breaker.off()
    retry = _retry(a.retries or "default")
    window = _seconds(a.retry_for or "10m")
    policies = (
        rule_policies(
            rules,
            schedule=retry if a.retries is not None else None,
            within=window if a.retry_for is not None else None,
        )
        if rules is not None
        else {}
    )
    return SendOptions(
        retry=retry,
        max_duration=window,
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


def cmd_audit(a: argparse.Namespace) -> int:
    """Print delivery failure rates from the log (table, CSV or JSON); with
    ``--fail-below`` exit 1 naming the groups delivered under that rate."""
    threshold = rate_option(a.fail_below) if a.fail_below is not None else None
    log = _read_log(a.log) if a.log else None
    if log is None:
        if not a.db.exists():
            raise InputError(f"no such log: {a.db}; send or import-log create one")
        log = read_log(a.db)  # a snapshot while another process writes it
    with log:
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
        for problem in post_alert(alert, targets_of(a.notify)):
            print(f"warning: {problem}", file=sys.stderr)
    return code


def cmd_import_log(a: argparse.Namespace) -> int:
    """Import a platform's postback-log export into the log; unreadable rows are
    quarantined (counted, the first shown), never the whole file. Exit 1 when rows name
    no rule (they cannot be linked to a dispatch; ``--undo RUN_ID`` takes the import
    back). ``--undo RUN_ID`` removes an earlier import instead."""
    if a.undo is not None:
        if a.file is not None:
            raise InputError("--undo RUN_ID removes an import: give no FILE with it")
        if not a.db.exists():
            raise InputError(f"{a.db}: no such log")
        n = remove_import(a.undo, a.db)
        print(f"removed import {a.undo}: {n:,} rows")
        return 0
    if a.file is None:
        raise InputError("import-log needs the export FILE (or --undo RUN_ID)")
    result = import_log(
        a.file,
        a.db,
        source=a.source,
        rule=a.rule,
        rules=a.rules,
        columns=columns_option(a.columns),
        encoding=a.encoding,
        timezone=a.timezone,
        status_map=status_map_option(a.status_map),
        ignore_status=list_option(a.ignore_status),
    )
    print(result)
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


def _warn_quarantine(events: Events | PartitionedPlan) -> None:
    q = events.quarantine
    if q.height:
        r = q.row(0, named=True)
        print(
            f"warning: {q.height:,} event rows quarantined (first: {r['source']} line "
            f"{r['line']}: {r['reason']})",
            file=sys.stderr,
        )


def _retry(text: str) -> Retry:
    try:
        return Retry.parse(text)
    except ValueError:
        raise InputError(
            f"--retries {text!r}: use default, short, none, a number of retries or delays "
            "like 1s,5s,30s"
        ) from None


def cmd_send(a: argparse.Namespace) -> int:
    """Fire a plan file, logging every attempt."""
    plan = read_plan(a.plan)
    if a.shard:
        plan = shard_plan(plan, a.shard)
        hosts = plan.frame["host"].n_unique()
        print(f"shard {a.shard}: {counted(len(plan), 'postback')} to {counted(hosts, 'host')}")
    if a.central:
        plan, done = delivered_elsewhere(plan, a.central)
        if done:
            print(f"{done:,} dispatches already delivered in {a.central}: not sent again")
    rules = read_rules(a.rules) if a.rules else None
    options = _send_options(a, rules, ignore_due=a.ignore_due)
    if rules is not None:  # the rules' pause: thresholds apply to the plan's hosts
        plan = replace(plan, rules=rules)
    events = None if not a.events else rereader(a.events, lambda paths: _events(a, paths))
    result = send_sync(plan, a.db, options=options, events=events)
    print(result)
    return 1 if result.has_failures else 0


def _seconds(text: str | None) -> float | None:
    if text is None:
        return None
    try:
        return parse_duration(text).total_seconds()
    except ValueError:
        raise InputError(f"{text!r} is not a duration; write e.g. 30s, 10m or 2h") from None


def cmd_receiver(a: argparse.Namespace) -> int:
    """Run a local receiver until Ctrl-C."""
    serve_forever(
        host=a.host, port=a.port, fail_rate=a.fail_rate, latency_ms=a.latency, seed=a.seed
    )
    return 0


def _read_log(name: str) -> LogStore:
    """``--log``: ``delta:PATH`` (a Delta log) or a DuckDB file, opened to read."""
    if name.startswith("delta:"):
        return open_delta_log(name)
    if not os.path.exists(name):
        raise InputError(f"no such log: {name}; send or import-log create one")
    return LogStore(name, read_only=True)
