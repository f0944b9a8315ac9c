"""Firing rule 7 at send time: fresh events given to ``send`` stop a delayed postback
whose conversion changed status within the delay."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path

import polars as pl

from postback_lab import LogStore, build_plan, read_events, read_plan, read_rules
from postback_lab.cli import main
from postback_lab.receiver import Receiver
from postback_lab.sending import FakeClock, send_sync


def test_a_dispatch_superseded_within_its_delay_is_not_fired(tmp_path):
    planned = pl.DataFrame(
        {
            "transaction_id": ["t1", "t2", "t3"],
            "status": "approved",
            "occurred_at": ["2024-01-01T10:00:00Z"] * 3,
        }
    )
    # later: t1 rejected 5 minutes after approval (inside the 10m delay); t2 rejected after
    # its postback was due; t3 unchanged
    fresh = pl.concat(
        [
            planned,
            pl.DataFrame(
                {
                    "transaction_id": ["t1", "t2"],
                    "status": "rejected",
                    "occurred_at": ["2024-01-01T10:05:00Z", "2024-01-01T10:20:00Z"],
                }
            ),
        ]
    )
    db = tmp_path / "log.duckdb"
    with Receiver() as rx:
        rules = read_rules([{"name": "r", "delay": "10m", "url": rx.url + "/p/{transaction_id}"}])
        plan = build_plan(planned, rules)
        assert len(plan) == 3
        result = send_sync(plan, db, events=fresh, progress=False)
        got = sorted(r.path for r in rx.received())
    assert got == ["/p/t2", "/p/t3"]
    assert (result.delivered, result.superseded, result.has_failures) == (2, 1, False)
    assert "1 superseded within their delay were not fired" in result.summary()
    with LogStore(db) as s:
        assert sorted(s.attempts()["transaction_id"]) == ["t2", "t3"]  # nothing logged for t1


def test_without_a_delay_nothing_is_rechecked(tmp_path):
    events = pl.DataFrame(
        {
            "transaction_id": ["t1", "t1"],
            "status": ["approved", "rejected"],
            "occurred_at": ["2024-01-01T10:00:00Z", "2024-01-01T10:00:01Z"],
        }
    )
    with Receiver() as rx:
        rules = read_rules([{"name": "r", "url": rx.url + "/p/{transaction_id}"}])
        result = send_sync(
            build_plan(events, rules), tmp_path / "log.duckdb", events=events, progress=False
        )
    assert (result.delivered, result.superseded) == (1, 0)


T0 = datetime(2024, 1, 1, 10, 0, tzinfo=UTC)


class _RejectWhileWaiting(FakeClock):
    """A clock whose first wait is when the fraud check rejects t1 (the line reaches the
    events file while the delayed postbacks wait for their due time)."""

    def __init__(self, start: datetime, events: Path) -> None:
        super().__init__(start)
        self.events = events

    async def sleep(self, seconds: float) -> None:
        if not self.slept:
            with self.events.open("a") as f:
                f.write("t1,rejected,2024-01-01T10:05:00Z\n")
        await super().sleep(seconds)


def test_a_rejection_that_arrives_while_a_postback_waits_cancels_it(tmp_path):
    events = tmp_path / "events.csv"
    events.write_text(
        "transaction_id,status,occurred_at\n"
        "t1,approved,2024-01-01T10:00:00Z\nt2,approved,2024-01-01T10:00:00Z\n"
    )
    with Receiver() as rx:
        rules = read_rules([{"name": "r", "delay": "10m", "url": rx.url + "/p/{transaction_id}"}])
        plan = build_plan(read_events(events), rules)
        clock = _RejectWhileWaiting(T0 + timedelta(minutes=1), events)
        result = send_sync(
            plan, tmp_path / "log.duckdb", events=str(events), clock=clock, progress=False
        )
        got = [r.path for r in rx.received()]
    assert clock.slept  # the send waited for the due time
    assert got == ["/p/t2"]
    assert (result.delivered, result.superseded) == (1, 1)


def test_cli_send_events_and_a_parquet_plan_keeps_cancel_on_change(tmp_path, capsys):
    """`postback-lab send PLAN --events SOURCE`: the delayed rule's postbacks of rejected
    conversions are not fired; the rule with cancel_on_change: false fires both, also
    from a plan read back from Parquet."""
    planned = tmp_path / "planned.csv"
    planned.write_text(
        "transaction_id,status,occurred_at\n"
        "t1,approved,2024-01-01T10:00:00Z\nt2,approved,2024-01-01T10:00:00Z\n"
    )
    fresh = tmp_path / "fresh.csv"
    fresh.write_text(
        planned.read_text() + "t1,rejected,2024-01-01T10:05:00Z\nt2,rejected,2024-01-01T10:06:00Z\n"
    )
    with Receiver() as rx:
        rules = tmp_path / "postbacks.yaml"
        rules.write_text(
            "postbacks:\n"
            f"  - name: waits\n    delay: 10m\n    url: {rx.url}/a/{{transaction_id}}\n"
            f"  - name: keeps\n    delay: 10m\n    cancel_on_change: false\n"
            f"    url: {rx.url}/b/{{transaction_id}}\n"
        )
        plan = tmp_path / "plan.parquet"
        assert main(["plan", str(planned), "--rules", str(rules), "-o", str(plan)]) == 0
        back = read_plan(plan).frame.sort("rule", "transaction_id")
        assert back.select("rule", "cancel_on_change").rows() == [
            ("keeps", False),
            ("keeps", False),
            ("waits", True),
            ("waits", True),
        ]
        capsys.readouterr()
        db = tmp_path / "log.duckdb"
        code = main(["send", str(plan), "--db", str(db), "--events", str(fresh), "--no-progress"])
        out = capsys.readouterr().out
        got = sorted(r.path for r in rx.received())
    assert code == 0, out
    assert got == ["/b/t1", "/b/t2"]
    assert "2 superseded within their delay were not fired" in out
