"""The option groups several commands share (how events are read, the window of a plan,
the log file, retries, guards, alerts) and the parsers of option values (``A=B,...``
mappings, lists, times, rates, retry schedules, durations). The parser of every command
is built from here, also for ``--help``: what needs polars or a stage is imported by the
value parser that uses it."""

from __future__ import annotations

import argparse
import re
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from .._errors import InputError

if TYPE_CHECKING:
    from ..sending import Retry

Group = argparse.ArgumentParser | argparse._ArgumentGroup


def db_option(s: argparse.ArgumentParser, *, delta: bool = False) -> None:
    """``--db``: the log a command reads or writes (every command that has a log); with
    ``delta``, a read may name the central Delta Lake log as ``delta:PATH`` (kept a string:
    a Path would fold the ``//`` of ``delta:s3://...``)."""
    if delta:
        s.add_argument(
            "--db",
            default="postback_lab.duckdb",
            metavar="LOG",
            help="the log: a DuckDB file (postback_lab.duckdb) or delta:PATH, a Delta Lake "
            "log 'log export' wrote",
        )
        return
    s.add_argument(
        "--db",
        type=Path,
        default=Path("postback_lab.duckdb"),
        help="the DuckDB log file (postback_lab.duckdb)",
    )


def window_options(s: argparse.ArgumentParser) -> None:
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


def reading_options(s: argparse.ArgumentParser) -> None:
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
    status_options(g)
    g.add_argument(
        "--dialect",
        metavar="PLATFORM",
        help="the macro syntax of the rules' URLs when pasted from a platform: cake, tune, "
        "everflow, affise, keitaro, voluum, binom (a rule's own dialect: wins)",
    )


def status_options(g: Group) -> None:
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


def notify_option(s: Group) -> None:
    """``--notify URL``: a webhook for alerts (send, backfill, audit)."""
    s.add_argument(
        "--notify",
        action="append",
        metavar="URL",
        help="post alerts to this webhook (Slack/Teams-compatible JSON; repeatable), besides "
        "the alerts: targets of the rules file",
    )


def sending_options(s: argparse.ArgumentParser, retry_default: str = "default within 10m") -> None:
    """How a run sends: limits, retries, workers, the circuit breaker, alerts, progress and
    the host guards. One definition for ``send`` and ``backfill``, read back by
    ``_send.send_options``."""
    schedule, _, window = retry_default.partition(" within ")
    g = s.add_argument_group("sending (the same for send and backfill)")
    g.add_argument(
        "--concurrency", type=int, default=64, metavar="N", help="requests in flight (64)"
    )
    g.add_argument(
        "--per-host", type=int, default=8, metavar="N", help="requests in flight per host (8)"
    )
    g.add_argument(
        "--rate", type=float, default=None, metavar="R", help="requests per second per host"
    )
    g.add_argument(
        "--retries",
        default=None,
        metavar="SCHEDULE",
        help=f"retry schedule ({schedule}): default (5s, 5m, 30m, 2h), short (0.5s, 2s, 5s), "
        "none, a number of retries N, or delays like 1s,5s,30s (overrides the rules' "
        "retry: schedules)",
    )
    g.add_argument(
        "--retry-for",
        default=None,
        metavar="D",
        help=f"retry only within this time ({window}); later retries are left to a "
        "backfill (overrides the rules' retry: for)",
    )
    notify_option(g)
    g.add_argument(
        "--workers",
        type=int,
        default=0,
        metavar="N",
        help="processes that send, each a shard of the hosts, while this one writes the "
        "log (0, the default: one per core, at most one per host and per 2,000 postbacks)",
    )
    g.add_argument(
        "--pause-after",
        type=int,
        default=10,
        metavar="N",
        help="pause a host for the run after N failed attempts in a row, or 70%% of >= 10 "
        "in 5 minutes (10; 0: never); its remaining postbacks are logged 'paused'",
    )
    g.add_argument("--no-progress", action="store_true", help="no progress bar")
    g.add_argument(
        "--allow-host",
        action="append",
        dest="allow_hosts",
        metavar="HOST",
        help="only send to these hosts (repeatable; *.example.com works)",
    )
    g.add_argument(
        "--deny-private",
        action="store_true",
        help="refuse hosts that resolve to private, loopback or link-local addresses",
    )


def format_option(s: argparse.ArgumentParser, *, what: str) -> None:
    """``--format table|json``: for people, or one JSON object summarising ``what`` (the
    keys are listed in docs/cli.md, "JSON output")."""
    s.add_argument(
        "--format",
        choices=["table", "json"],
        default="table",
        help=f"table (for people) or json (one object: {what})",
    )


def columns_option(text: str | None) -> dict[str, str]:
    """``--columns 'Conversion Date=occurred_at,Aff=publisher_id'`` as a mapping."""
    return _pairs(text, "--columns", "SOURCE=COLUMN", "'Conversion Date=occurred_at'")


def status_map_option(text: str | None) -> dict[str, str]:
    """``--status-map 'sale=approved,trash=rejected'`` as a mapping (checked by the reader)."""
    return _pairs(text, "--status-map", "FROM=TO", "'sale=approved,trash=rejected'")


def _pairs(text: str | None, flag: str, shape: str, example: str) -> dict[str, str]:
    """``A=B,C=D`` as ``{"A": "B", "C": "D"}``; a piece without ``=`` or a side is an
    InputError naming ``flag`` and showing ``example``."""
    out: dict[str, str] = {}
    for item in (text or "").split(","):
        if not item.strip():
            continue
        src, eq, dst = item.partition("=")
        if not eq or not src.strip() or not dst.strip():
            raise InputError(
                f"{flag} {text!r}: write {shape} pairs separated by commas, like {example}"
            )
        out[src.strip()] = dst.strip()
    return out


def list_option(text: str | None) -> list[str]:
    """``--ignore-status 'ping,test'`` as a list."""
    return [v.strip() for v in (text or "").split(",") if v.strip()]


def when_option(text: str | None, name: str, timezone: str = "UTC") -> datetime | None:
    """A ``--since``/``--until`` value as an instant: a time written without an offset is
    a wall-clock time of ``timezone`` (``--timezone``), else UTC."""
    from .._util import parse_when

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


def since_option(a: argparse.Namespace) -> datetime | None:
    """``--since`` read in ``--timezone`` (UTC when the command has none)."""
    return when_option(a.since, "--since", getattr(a, "timezone", "UTC") or "UTC")


def until_option(a: argparse.Namespace) -> datetime | None:
    """``--until`` read in ``--timezone`` (UTC when the command has none)."""
    return when_option(a.until, "--until", getattr(a, "timezone", "UTC") or "UTC")


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


def retry_option(text: str) -> Retry:
    """``--retries``: default, short, none, a number of retries or delays like 1s,5s,30s."""
    from ..sending import Retry

    try:
        return Retry.parse(text)
    except ValueError:
        raise InputError(
            f"--retries {text!r}: use default, short, none, a number of retries or delays "
            "like 1s,5s,30s"
        ) from None


def seconds_option(text: str | None) -> float | None:
    """A duration flag (``--retry-for 10m``) in seconds."""
    from .._util import parse_duration

    if text is None:
        return None
    try:
        return parse_duration(text).total_seconds()
    except ValueError:
        raise InputError(f"{text!r} is not a duration; write e.g. 30s, 10m or 2h") from None
