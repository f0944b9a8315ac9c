"""``postback-lab``: the command line (DESIGN contract 6).

Exit codes: 0 success, 1 some postbacks were not delivered, 2 bad input. Errors are one
sentence on stderr; ``--debug`` shows the traceback.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Callable, Sequence
from pathlib import Path

from ._errors import DeliveryError, PostbackLabError

EXIT_OK, EXIT_FAILED, EXIT_INPUT = 0, 1, 2


def _out(text: str = "") -> None:
    print(text, flush=True)


def cmd_sample(a: argparse.Namespace) -> int:
    from . import sample

    paths = sample.write(a.output, a.rows, seed=a.seed, base_url=a.base_url)
    for name, p in paths.items():
        _out(f"{name}: {p}")
    return EXIT_OK


def _not_built(name: str) -> Callable[[argparse.Namespace], int]:
    def run(a: argparse.Namespace) -> int:
        print(f"postback-lab {name}: not built yet in this version", file=sys.stderr)
        return EXIT_INPUT

    return run


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog="postback-lab",
        description="Find which postbacks should have fired, backfill the missed ones "
        "exactly once, and audit delivery failures.",
    )
    p.add_argument("--debug", action="store_true", help="show tracebacks on errors")
    sub = p.add_subparsers(dest="command", metavar="COMMAND", required=True)

    s = sub.add_parser("demo", help="whole flow on bundled sample data against a local receiver")
    s.add_argument("--out", type=Path, default=Path("demo-output"), help="where to write files")
    s.set_defaults(func=_lazy("demo", "cmd_demo"))

    s = sub.add_parser("plan", help="evaluate rules over events into a dispatch plan")
    s.add_argument(
        "events",
        nargs="+",
        help="event files (CSV, Parquet, NDJSON, globs) or duckdb:file.duckdb::table",
    )
    s.add_argument("--rules", required=True, help="postbacks.yaml")
    s.add_argument("-o", "--output", type=Path, help="write the plan as Parquet")
    s.add_argument("--explain", action="store_true", help="why events did not fire, per rule")
    s.add_argument("--encoding", default="utf-8", help="text encoding of CSV events (utf-8)")
    s.set_defaults(func=_lazy("plan", "cmd_plan"))

    s = sub.add_parser("send", help="fire a plan, logging every attempt")
    s.add_argument("plan", type=Path, help="PLAN.parquet from 'postback-lab plan -o'")
    _db(s)
    s.add_argument("--dry-run", action="store_true", help="render and log, open no socket")
    s.add_argument("--concurrency", type=int, default=64, help="requests in flight (64)")
    s.add_argument("--per-host", type=int, default=8, help="requests in flight per host (8)")
    s.add_argument("--rate", type=float, default=None, help="requests per second per host")
    s.add_argument(
        "--retries",
        default="default",
        help="retry schedule: default, short, none or delays like 1s,5s,30s",
    )
    s.add_argument("--ignore-due", action="store_true", help="fire now, ignoring due_at")
    s.add_argument(
        "--retry-for",
        default="10m",
        help="retry only within this time (10m); later retries are left to a backfill",
    )
    s.add_argument("--no-progress", action="store_true", help="no progress bar")
    _guards(s)
    s.set_defaults(func=_lazy("send", "cmd_send"))

    s = sub.add_parser("backfill", help="plan, reconcile with the log, send only what is missing")
    s.add_argument("events", nargs="+")
    s.add_argument("--rules", required=True)
    _db(s)
    s.add_argument("--since", help="only postbacks due at or after T (ISO date/time)")
    s.add_argument("--until", help="only postbacks due before T")
    s.add_argument("--dry-run", action="store_true")
    s.add_argument("--concurrency", type=int, default=64)
    s.add_argument("--per-host", type=int, default=8)
    s.add_argument("--rate", type=float, default=None)
    s.add_argument("--no-progress", action="store_true", help="no progress bar")
    s.add_argument("--encoding", default="utf-8", help="text encoding of CSV events (utf-8)")
    _guards(s)
    s.set_defaults(func=_lazy("backfill", "cmd_backfill"))

    s = sub.add_parser("audit", help="delivery failure rates from the log")
    _db(s)
    s.add_argument("--by", default="rule", help="comma-separated columns (rule)")
    s.add_argument("--since")
    s.add_argument("--until")
    s.add_argument("--format", choices=["table", "csv", "json"], default="table")
    s.set_defaults(func=_lazy("audit", "cmd_audit"))

    s = sub.add_parser("import-log", help="import a platform's postback-log export")
    s.add_argument("file", type=Path)
    _db(s)
    s.set_defaults(func=_lazy("import-log", "cmd_import_log"))

    s = sub.add_parser("receiver", help="a local HTTP receiver that records postbacks")
    s.add_argument("--host", default="127.0.0.1")
    s.add_argument("--port", type=int, default=8765)
    s.add_argument("--fail-rate", type=float, default=0.0)
    s.add_argument("--latency", type=float, default=0.0, help="milliseconds per response")
    s.add_argument("--seed", type=int, default=0)
    s.set_defaults(func=_lazy("receiver", "cmd_receiver"))

    s = sub.add_parser("sample", help="write sample events, rules and a platform log")
    s.add_argument("-o", "--output", type=Path, default=Path("sample"))
    s.add_argument("--rows", type=int, default=2_000, help="conversions to generate")
    s.add_argument("--seed", type=int, default=0)
    s.add_argument("--base-url", default="http://127.0.0.1:8765")
    s.set_defaults(func=cmd_sample)
    return p


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


def _db(s: argparse.ArgumentParser) -> None:
    s.add_argument(
        "--db",
        type=Path,
        default=Path("postback_lab.duckdb"),
        help="the DuckDB log file (postback_lab.duckdb)",
    )


def _lazy(name: str, attr: str) -> Callable[[argparse.Namespace], int]:
    """Commands living in ``_commands`` are imported only when run (fast ``--help``)."""

    def run(a: argparse.Namespace) -> int:
        try:
            from . import _commands
        except ImportError:
            return _not_built(name)(a)
        fn = getattr(_commands, attr, None)
        return _not_built(name)(a) if fn is None else fn(a)

    return run


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    a = parser.parse_args(argv)
    try:
        return int(a.func(a))
    except KeyboardInterrupt:
        print("interrupted; completed attempts are in the log", file=sys.stderr)
        return 130
    except Exception as exc:
        if a.debug:
            raise
        if isinstance(exc, PostbackLabError):
            message = str(exc)
        else:  # a bug or an environment problem: still one sentence
            message = f"unexpected {type(exc).__name__}: {exc} (run with --debug for details)"
        print(f"postback-lab: error: {message}", file=sys.stderr)
        return EXIT_FAILED if isinstance(exc, DeliveryError) else EXIT_INPUT


if __name__ == "__main__":
    sys.exit(main())
