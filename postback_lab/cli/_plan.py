"""``postback-lab plan``, ``why`` and ``reconcile``: the dispatch plan of the events and
rules, every rule's verdict for one transaction, and the plan compared with the log.
Each body imports the stages it uses when it runs (no sending, no HTTP)."""

from __future__ import annotations

import argparse
import json
import os
from datetime import datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

from .._errors import InputError, did_you_mean
from ._inputs import Stages, read_and_plan, read_inputs, read_log, read_options, say_notes
from ._options import (
    db_option,
    format_option,
    reading_options,
    since_option,
    until_option,
    when_option,
    window_options,
)

if TYPE_CHECKING:
    import polars as pl

    from ..plan import Plan, WrittenPlan
    from ..scale import PartitionedPlan


def add_plan(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    """The ``plan`` command."""
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
    format_option(s, what="postbacks, rules, hosts, due times, the file written")
    window_options(s)
    reading_options(s)
    s.set_defaults(func=cmd_plan)


def add_reconcile(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    """The ``reconcile`` command."""
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
    window_options(s)
    reading_options(s)
    s.set_defaults(func=cmd_reconcile)


def add_why(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    """The ``why`` command."""
    s = sub.add_parser("why", help="why each rule did or did not fire for one transaction")
    s.add_argument("transaction_id", metavar="TRANSACTION", help="the transaction id")
    s.add_argument(
        "events",
        nargs="+",
        help="the event files it is in (CSV, Parquet, NDJSON, globs) or duckdb:file.duckdb::table",
    )
    s.add_argument("--rules", required=True, help="postbacks.yaml")
    reading_options(s)
    s.set_defaults(func=cmd_why)


def cmd_plan(a: argparse.Namespace) -> int:
    """Build a plan, print it (and why events did not fire), write it as Parquet."""
    from ..plan import sink_plan

    if a.explain and a.format == "json":
        raise InputError("--explain prints tables: leave it out with --format json")
    if a.engine is not None or a.partitions is not None:
        return _plan_partitioned(a)
    if a.output is None or _scoped(a):
        plan = _scope(read_and_plan(a, Stages()), a)
        if a.output is not None:
            plan.write_parquet(a.output)
        return _show(a, plan, a.output)
    # with -o the plan goes to Parquet rule by rule as it is built, never whole in memory
    stages = Stages()
    events, rules = read_inputs(a, stages, planning_only=True)
    with stages("planning") as done:
        written = sink_plan(events, rules, a.output)
        done["what"] = f"{len(written):,} postbacks"
    return _show(a, written, written.path)


def _scoped(a: argparse.Namespace) -> bool:
    """Whether ``plan``/``reconcile`` were given a window or a scope."""
    return any(getattr(a, k, None) for k in ("since", "until", "rule", "publisher"))


def _scope(plan: Plan, a: argparse.Namespace) -> Plan:
    """The plan's postbacks due in ``[--since, --until)`` of the ``--rule`` and
    ``--publisher`` values given (each repeatable); a rule the plan's rules do not have is
    an InputError naming the closest."""
    names = plan.rules.names if plan.rules is not None else plan.frame["rule"].unique()
    return plan.filter(*_window(a, list(names)))


def _window(a: argparse.Namespace, names: list[str]) -> list[pl.Expr]:
    """The predicates of ``--since``/``--until`` (in ``--timezone``), ``--rule`` (one of
    ``names``, else an InputError naming the closest) and ``--publisher``."""
    import polars as pl

    tz = getattr(a, "timezone", "UTC") or "UTC"
    lo, hi = when_option(a.since, "--since", tz), when_option(a.until, "--until", tz)
    conds = []
    if lo is not None:
        conds.append(pl.col("due_at") >= lo)
    if hi is not None:
        conds.append(pl.col("due_at") < hi)
    if a.rule:
        for r in a.rule:
            if r not in names:
                raise InputError(f"--rule {r!r}: no such rule{did_you_mean(r, list(names))}")
        conds.append(pl.col("rule").is_in(a.rule))
    if a.publisher:
        conds.append(pl.col("publisher_id").is_in([str(p) for p in a.publisher]))
    return conds


def cmd_reconcile(a: argparse.Namespace) -> int:
    """Plan from the events, then compare with the log: delivered, failed, missed per rule
    (a read: the log must exist and is not changed)."""
    from ..auditing import reconcile

    if not a.db.exists():
        raise InputError(f"{a.db}: no such log; send, backfill or import-log first")
    full = read_and_plan(a, Stages(False))
    plan = _scope(full, a)
    with read_log(a.db) as log:
        # imported rows link against the whole plan, as backfill links them
        rec = reconcile(plan, log, since=since_option(a), until=until_option(a), whole=full)
    if a.format == "json":
        print(json.dumps({**rec.totals, "dispatches": rec.dispatches.height}))
    elif a.format == "csv":
        print(rec.dispatches.drop("body", strict=False).write_csv(), end="")
    else:
        print(rec)
    return 0


def cmd_why(a: argparse.Namespace) -> int:
    """Every rule's verdict for one transaction of the events."""
    from ..plan import build_plan

    events, rules = read_inputs(a, Stages(False))
    plan = build_plan(events, rules)
    print(plan.why(a.transaction_id))
    return 0


def _plan_partitioned(a: argparse.Namespace) -> int:
    """``plan --engine local|spark --partitions N -o FOLDER``: planned in buckets of
    transactions, written as Parquet parts."""
    from ..plan import event_columns, parquet_files
    from ..rules import read_rules
    from ..scale import plan_partitioned, spark_event_columns, table_uri

    if a.output is None:
        raise InputError("--engine/--partitions write the plan in parts: name a folder with -o")
    if a.partitions is not None and a.partitions < 1:
        raise InputError(f"--partitions {a.partitions}: must be 1 or more")
    stages = Stages()
    if a.engine == "spark":
        if not os.path.exists(a.rules):
            raise InputError(f"{a.rules}: no such rules file")
        options = read_options(a)
        columns = spark_event_columns(a.events, **options)  # from the files' schema
        rules = read_rules(a.rules, event_columns=columns, dialect=a.dialect)
        with stages("reading and planning on Spark") as done:
            result = plan_partitioned(
                a.events,
                rules,
                table_uri(a.output),
                engine="spark",
                partitions=a.partitions,
                where=_window(a, rules.names),
                **options,
            )
            done["what"] = f"{len(result):,} postbacks"
        say_notes(result)
    elif (files := parquet_files(a.events)) is not None:
        # Parquet: the pool reads the files into the buckets; this process holds no events
        if not os.path.exists(a.rules):
            raise InputError(f"{a.rules}: no such rules file")
        options = read_options(a)
        columns = event_columns(files, **options)
        rules = read_rules(a.rules, event_columns=columns, dialect=a.dialect)
        with stages("reading and planning in buckets") as done:
            result = plan_partitioned(
                files,
                rules,
                a.output,
                partitions=a.partitions,
                where=_window(a, rules.names),
                **options,
            )
            done["what"] = f"{len(result):,} postbacks"
        say_notes(result)
    else:
        events, rules = read_inputs(a, stages)
        with stages("planning in buckets") as done:
            result = plan_partitioned(
                events, rules, a.output, partitions=a.partitions, where=_window(a, rules.names)
            )
            done["what"] = f"{len(result):,} postbacks"
    return _show(a, result, result.path)


def _show(a: argparse.Namespace, plan: Plan | WrittenPlan | PartitionedPlan, path: Any) -> int:
    """What ``plan`` prints: the plan's summary per rule, why events did not fire
    (``--explain``) and where it went (``-o``); or, with ``--format json``, one object."""
    if a.format == "json":
        print(json.dumps(plan_summary(plan, path)))
        return 0
    print(plan)
    if a.explain:
        print()
        print(plan.explain())
    if path is not None:
        print(f"plan written to {path}")
    return 0


def plan_summary(plan: Plan | WrittenPlan | PartitionedPlan, path: Any = None) -> dict[str, Any]:
    """``plan --format json``: postbacks, per rule, hosts, the due-time range, quarantined
    event rows and the file written (None without ``-o``)."""
    from ..plan import Plan

    by_rule = plan.by_rule()
    hosts = plan.frame["host"].n_unique() if isinstance(plan, Plan) else plan.hosts
    quarantine = getattr(plan, "quarantine", None)
    first, last = by_rule["first_due"].min(), by_rule["last_due"].max()
    return {
        "postbacks": len(plan),
        "rules": dict(zip(by_rule["rule"], by_rule["dispatches"], strict=True)),
        "hosts": hosts,
        "first_due": first.isoformat() if isinstance(first, datetime) else None,
        "last_due": last.isoformat() if isinstance(last, datetime) else None,
        "quarantined": 0 if quarantine is None else quarantine.height,
        "output": None if path is None else str(path),
    }
