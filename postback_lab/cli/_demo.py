"""``postback-lab demo``, ``sample`` and ``receiver``: the whole flow on the bundled
sample data, sample files to try it on, and a local receiver to send to."""

from __future__ import annotations

import argparse
import os
from collections.abc import Callable
from pathlib import Path


def add_demo(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    """The ``demo`` command."""
    s = sub.add_parser("demo", help="whole flow on bundled sample data against a local receiver")
    s.add_argument(
        "-o",
        "--output",
        type=Path,
        default=Path("demo-output"),
        help="folder to write the log and the chart to (demo-output)",
    )
    s.set_defaults(func=cmd_demo)


def add_receiver(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    """The ``receiver`` command."""
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
    s.set_defaults(func=cmd_receiver)


def add_sample(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    """The ``sample`` command."""
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
    s.set_defaults(func=cmd_sample)


def cmd_sample(a: argparse.Namespace) -> int:
    """Write sample events, rules and a platform log export."""
    from .. import sample

    paths = sample.write(a.output, a.rows, seed=a.seed, base_url=a.base_url)
    for name, p in paths.items():
        print(f"{name}: {p}", flush=True)
    return 0


def cmd_demo(a: argparse.Namespace) -> int:
    """The whole story on the bundled sample data against a local receiver."""
    from .. import sample
    from ..auditing import audit, backfill_sync, reconcile
    from ..events import read_events
    from ..plan import build_plan
    from ..receiver import Receiver
    from ..rules import read_rules
    from ..sending import Retry
    from ..store import LogStore, import_log

    out = a.output
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


def cmd_receiver(a: argparse.Namespace) -> int:
    """Run a local receiver until Ctrl-C."""
    from ..receiver import serve_forever

    serve_forever(
        host=a.host, port=a.port, fail_rate=a.fail_rate, latency_ms=a.latency, seed=a.seed
    )
    return 0
