"""The bodies of the CLI commands that need more than a few lines (imported lazily)."""

from __future__ import annotations

import argparse

from . import sample
from .events import read_events
from .plan import build_plan
from .rules import read_rules


def cmd_demo(a: argparse.Namespace) -> int:
    """Sample data -> events -> plan -> explanation."""
    out = a.out
    out.mkdir(parents=True, exist_ok=True)
    src = sample.data_dir()
    print(f"== sample data in {src}")
    events = read_events(src / "events.csv")
    print(events)
    rules = read_rules(src / "postbacks.yaml")
    plan = build_plan(events, rules)
    print("\n== plan")
    print(plan)
    print("\n== why events did not fire")
    print(plan.explain())
    path = plan.write_parquet(out / "plan.parquet")
    print(f"\nplan written to {path}")
    return 0


def _retry(text: str):  # type: ignore[no-untyped-def]
    from .send import Retry

    try:
        return Retry.parse(text)
    except ValueError:
        from ._errors import InputError

        raise InputError(
            f"--retries {text!r}: use default, short, none or delays like 1s,5s,30s"
        ) from None


def cmd_send(a: argparse.Namespace) -> int:
    from .plan import read_plan
    from .send import send_sync

    plan = read_plan(a.plan)
    result = send_sync(
        plan,
        a.db,
        dry_run=a.dry_run,
        concurrency=a.concurrency,
        per_host=a.per_host,
        rate=a.rate,
        retry=_retry(a.retries),
        ignore_due=a.ignore_due,
        max_duration=_seconds(a.retry_for),
        progress=not a.no_progress,
    )
    print(result)
    return 1 if result.has_failures else 0


def _seconds(text: str | None) -> float | None:
    from ._errors import InputError
    from .rules._read import parse_duration

    if text is None:
        return None
    try:
        return parse_duration(text).total_seconds()
    except ValueError:
        raise InputError(f"{text!r} is not a duration; write e.g. 30s, 10m or 2h") from None


def cmd_receiver(a: argparse.Namespace) -> int:
    from .receiver import serve_forever

    serve_forever(
        host=a.host, port=a.port, fail_rate=a.fail_rate, latency_ms=a.latency, seed=a.seed
    )
    return 0
