"""What the commands read: the events and rules with the reading flags (``--source``,
``--columns``, ...), planned when asked; the log, opened to read or to write; and one
progress line per step of a long read on a terminal. The stages load when a function
here runs, not when the parser is built."""

from __future__ import annotations

import argparse
import os
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import replace
from pathlib import Path
from typing import TYPE_CHECKING, Any

from .._errors import InputError
from ._options import columns_option, list_option, status_map_option

if TYPE_CHECKING:
    from ..events import Events
    from ..plan import Plan
    from ..rules import RuleSet
    from ..scale import PartitionedPlan
    from ..store import LogReader


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


def events_of(a: argparse.Namespace, paths: Any) -> Events:
    """Read events with the reading flags of ``a`` (--source, --columns, ...) and the
    ``statuses:`` of its rules file, under --status-map/--ignore-status."""
    from ..events import read_events

    return read_events(paths, **read_options(a))


def read_options(a: argparse.Namespace) -> dict[str, Any]:
    """The reading flags of ``a`` as ``read_events`` options, with the ``statuses:`` of
    its rules file under --status-map/--ignore-status."""
    from ..rules import StatusRules, read_statuses

    statuses = read_statuses(a.rules) if getattr(a, "rules", None) else StatusRules()
    statuses = statuses.overridden(status_map_option(a.status_map), list_option(a.ignore_status))
    return dict(
        preset=a.source,
        rename=columns_option(a.columns),
        event_type=a.event_type,
        encoding=a.encoding,
        sep=a.sep,
        date_format=a.date_format,
        timezone=a.timezone,
        status_map=statuses.status_map,
        ignore_status=statuses.ignore_status,
    )


def read_inputs(
    a: argparse.Namespace, stages: Stages, *, planning_only: bool = False
) -> tuple[Events, RuleSet]:
    """The events and the rules of ``plan``/``backfill``, read with the reading flags.
    ``planning_only``: the events are only planned (``plan -o``), so the columns no rule
    reads are let go after the read (10M sample events: 5 of 18 columns)."""
    from ..events import one_chunk
    from ..plan import columns_used
    from ..rules import read_rules

    if not os.path.exists(a.rules):  # before a long read of the events
        raise InputError(f"{a.rules}: no such rules file")
    with stages("reading events") as done:
        events = events_of(a, a.events)
        done["what"] = f"{events.frame.height:,} rows"
    # the events' columns let every rule problem, unknown macros included, show at once
    rules = read_rules(a.rules, event_columns=events.frame.columns, dialect=a.dialect)
    say_notes(events)
    # one contiguous copy (the read batches let go): planning on the batches of a 10M-row
    # read gathers across them and peaks 1.5 GB higher (6.1 vs 4.5 GB); made a few
    # columns at a time, with no other reference to the batches left here
    used = columns_used(rules) if planning_only else dict.fromkeys(events.frame.columns)
    keep = [c for c in events.frame.columns if c in used]
    columns = events.frame.select(keep).get_columns()
    events = replace(events, frame=events.frame.clear())
    events = replace(events, frame=one_chunk(columns))
    return events, rules


def read_and_plan(a: argparse.Namespace, stages: Stages) -> Plan:
    """The plan of the events and rules of ``a``."""
    from ..plan import build_plan

    events, rules = read_inputs(a, stages)
    with stages("planning") as done:
        plan = build_plan(events, rules)
        done["what"] = f"{len(plan):,} postbacks"
    return plan


def say_notes(read: Events | PartitionedPlan) -> None:
    """How the events were read, on stderr: each note, then the quarantine warning."""
    for note in read.notes:
        print(f"note: {note}", file=sys.stderr)
    warn_quarantine(read)


def warn_quarantine(events: Events | PartitionedPlan) -> None:
    """One warning line on stderr when event rows were quarantined."""
    q = events.quarantine
    if q.height:
        r = q.row(0, named=True)
        print(
            f"warning: {q.height:,} event rows quarantined (first: {r['source']} line "
            f"{r['line']}: {r['reason']})",
            file=sys.stderr,
        )


def read_log(db: Path) -> LogReader:
    """The log opened read-only; while another process writes it, a snapshot copy (said on
    stderr, so the table on stdout stays clean)."""
    from ..auditing import open_for_reading

    store, _, note = open_for_reading(db)
    if note:
        print(f"note: {note}", file=sys.stderr)
    return store


def open_log(db: Path, *, read_only: bool = True) -> LogReader:
    """An existing log, to read (see ``read_log``) or to write."""
    from ..store import LogStore

    if not db.exists():
        raise InputError(f"no such log: {db}; send or import-log create one")
    return read_log(db) if read_only else LogStore(db)


def open_any_log(name: str) -> LogReader:
    """A log to read named by ``--db``: ``delta:PATH`` (a Delta log), else a DuckDB file
    (see ``read_log``)."""
    if name.startswith("delta:"):
        from ..scale import open_delta_log

        return open_delta_log(name)
    return open_log(Path(name))
