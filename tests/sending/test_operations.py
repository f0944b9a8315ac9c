"""Operations across runs, over real sockets and a real DuckDB log: a rule's retry
schedule outlives a run (a later run makes the retries that are due, exactly once), a host
paused by the breaker stays paused for later runs until a probe is delivered or it is
resumed, and alerts reach a webhook (signed when a secret is set)."""

from __future__ import annotations

import json
import subprocess
import sys
from datetime import UTC, datetime, timedelta

import polars as pl
import pytest

from postback_lab import LogStore, read_rules
from postback_lab.receiver import Receiver
from postback_lab.sending import Breaker, FakeClock, Retry, rule_policies, send_sync
from postback_lab.sending._sign import sign
from postback_lab.store import host_health, pause_host, retry_backlog

from .conftest import make_plan

T0 = datetime(2026, 12, 4, 9, 0, tzinfo=UTC)


def _policy() -> dict[str, Retry]:
    # retry after 1 s, then after 1 h; give up 1 day after the first attempt
    return {"r": Retry(delays=(1.0, 3600.0), jitter=0.0, within=86400.0)}


def test_a_rule_schedule_longer_than_a_run_is_honoured_by_later_runs_exactly_once(tmp_path):
    db = tmp_path / "log.duckdb"
    clock = FakeClock(T0)
    with Receiver() as rx:
        rx.set_script("/p0", ["500", "503", "200"])
        rx.set_script("/p1", ["200"])
        plan = make_plan([f"{rx.url}/p0", f"{rx.url}/p1"], due=[T0 - timedelta(minutes=1)] * 2)
        kw = dict(rule_retry=_policy(), clock=clock, max_duration=60, progress=False)
        first = send_sync(plan, db, **kw)
        # the 1 h retry falls after the run's 60 s window: it is left due in the log
        with LogStore(db) as s:
            left = retry_backlog(s)
        early = send_sync(plan, db, **kw)  # a run before it is due sends nothing
        hits_early = len(rx.received("/p0"))
        clock._now = T0 + timedelta(hours=2)
        due = send_sync(plan, db, **kw)  # due now: sent once, as the schedule's third try
        again = send_sync(plan, db, **kw)  # and never again
        hits = [r.answer for r in rx.received("/p0")]
        with LogStore(db) as s:
            rows = s.attempts("dispatch_id = ?", [plan.frame["dispatch_id"][0]]).sort("attempt")
            after = retry_backlog(s)
    assert (first.delivered, first.failed, first.carried) == (1, 1, 1)
    assert "1 retries left due for a later run" in first.summary()
    assert left.height == 1 and left["next_try"][0] == 3
    assert left["due_at"][0] == T0 + timedelta(seconds=1 + 3600)
    assert (early.waiting, early.attempts, hits_early) == (1, 0, 2)
    assert "1 retries not due yet wait for a later run" in early.summary()
    assert (due.delivered, due.attempts, due.skipped_delivered) == (1, 1, 1)
    assert (again.attempts, again.skipped_delivered) == (0, 2)
    assert hits == ["500", "503", "200"]
    assert rows["attempt"].to_list() == [1, 2, 3]
    assert rows["outcome"].to_list() == ["failed", "failed", "delivered"]
    assert after.height == 0


def test_the_schedule_gives_up_at_its_for_and_counts_exhausted(tmp_path):
    db = tmp_path / "log.duckdb"
    clock = FakeClock(T0)
    with Receiver() as rx:
        rx.set_script("/p0", ["500"])
        plan = make_plan([f"{rx.url}/p0"], due=[T0])
        policy = {"r": Retry(delays=(1.0, 10.0, 3600.0), jitter=0.0, within=30.0)}
        result = send_sync(plan, db, rule_retry=policy, clock=clock, progress=False)
        with LogStore(db) as s:
            left = retry_backlog(s)
    # tries at 0 s, 1 s, 11 s; the next (at 3611 s) is past 30 s after the first: given up
    assert len(rx.received("/p0")) == 3
    assert (result.failed, result.exhausted, result.carried, left.height) == (1, 1, 0, 0)


def test_rule_retry_keys_and_cli_overrides():
    rules = read_rules(
        """
        postbacks:
          - name: a
            url: http://x.test/?t={transaction_id}
            retry: {schedule: [5s, 5m, 30m, 2h, 5h, 10h], for: 24h}
          - name: b
            url: http://x.test/?t={transaction_id}
        """
    )
    plain = rule_policies(rules)
    assert set(plain) == {"a"}
    assert plain["a"].delays == (5.0, 300.0, 1800.0, 7200.0, 18000.0, 36000.0)
    assert plain["a"].within == 86400.0
    over = rule_policies(rules, schedule=Retry.parse("1s,2s"), within=60.0)
    assert (over["a"].delays, over["a"].within) == ((1.0, 2.0), 60.0)


def test_a_paused_host_stays_paused_for_later_runs_until_a_probe_is_delivered(tmp_path):
    db = tmp_path / "log.duckdb"
    clock = FakeClock(T0)
    with Receiver() as bad:
        for i in range(6):
            bad.set_script(f"/p{i}", ["500"])
        plan = make_plan([f"{bad.url}/p{i}" for i in range(6)], due=[T0] * 6)
        host = bad.url.removeprefix("http://")
        breaker = Breaker(consecutive=2, failure_rate=None, cool_down=600)
        kw = dict(per_host=1, retry=Retry.none(), breaker=breaker, clock=clock, progress=False)
        first = send_sync(plan, db, **kw)
        with LogStore(db) as s:
            health = host_health(s)
        # within the cool-down a later run sends nothing to it: every postback is 'paused'
        second = send_sync(plan, db, **kw)
        hits_paused = len(bad.received())
        # after the cool-down one probe goes; it fails: still paused, cooling down again
        clock._now = T0 + timedelta(minutes=11)
        third = send_sync(plan, db, **kw)
        hits_probe = len(bad.received())
        for i in range(6):
            bad.set_script(f"/p{i}", ["200"])
        clock._now = T0 + timedelta(minutes=22)
        fourth = send_sync(plan, db, **kw)  # the probe is delivered: the host resumes
        with LogStore(db) as s:
            paused_rows = s.attempts("outcome = 'paused' AND run_id = ?", [second.run_id])
            after = host_health(s)
    assert first.hosts_paused == (host,) and (first.failed, first.paused) == (2, 4)
    row = health.row(0, named=True)
    assert (row["host"], row["state"], row["failures"]) == (host, "paused", 2)
    assert row["reason"] == "2 failed attempts in a row"
    assert (second.attempts, second.paused, hits_paused) == (0, 6, 2)
    assert paused_rows.height == 6
    assert paused_rows["error"][0].startswith(f"not sent: {host} is paused since 2026-12-04")
    assert (third.attempts, third.paused, hits_probe) == (1, 5, 3)
    assert (fourth.delivered, fourth.attempts) == (6, 6)
    assert after.row(0, named=True)["state"] == "resumed"
    assert after.row(0, named=True)["reason"] == "resumed: a probe was delivered"


def test_hosts_cli_lists_pauses_and_resumes(tmp_path):
    db = tmp_path / "log.duckdb"
    with LogStore(db) as s:
        pause_host(s, "partner.test", "maintenance", by_hand=True)

    def cli(*args: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [sys.executable, "-m", "postback_lab.cli", *args],
            capture_output=True,
            text=True,
            timeout=120,
        )

    listed = cli("hosts", "--db", str(db), "--format", "json")
    resumed = cli("hosts", "resume", "partner.test", "--db", str(db))
    again = cli("hosts", "resume", "partner.test", "--db", str(db))
    table = cli("hosts", "--db", str(db))
    assert listed.returncode == 0, listed.stderr
    rows = json.loads(listed.stdout)
    assert [(r["host"], r["state"], r["reason"], r["by_hand"]) for r in rows] == [
        ("partner.test", "paused", "maintenance", True)
    ]
    assert resumed.returncode == 0 and "partner.test resumed" in resumed.stdout
    assert again.returncode == 2
    assert again.stderr.strip() == (
        f"postback-lab: error: partner.test is not paused in {db}; 'postback-lab hosts' lists"
    )
    assert "resumed by hand" in table.stdout and "0 of 1 hosts paused" in table.stdout


def test_a_host_paused_by_hand_is_never_probed(tmp_path):
    db = tmp_path / "log.duckdb"
    clock = FakeClock(T0 + timedelta(days=3))
    with Receiver() as rx:
        host = rx.url.removeprefix("http://")
        with LogStore(db) as s:
            pause_host(s, host, "partner asked us to wait", by_hand=True, now=T0)
        plan = make_plan([f"{rx.url}/a", f"{rx.url}/b"])
        result = send_sync(plan, db, clock=clock, breaker=Breaker(cool_down=0), progress=False)
        hits = len(rx.received())
    assert (hits, result.paused, result.attempts) == (0, 2, 0)


def test_alerts_reach_a_webhook_signed_when_a_secret_is_set(tmp_path):
    secret = "whsec_" + "c2VjcmV0LWtleS0xMjM0NQ=="
    with Receiver() as bad, Receiver() as hook:
        for i in range(4):
            bad.set_script(f"/p{i}", ["500"])
        plan = make_plan([f"{bad.url}/p{i}" for i in range(4)])
        result = send_sync(
            plan,
            tmp_path / "log.duckdb",
            per_host=1,
            retry=Retry.none(),
            breaker=Breaker(consecutive=2, failure_rate=None),
            notify=[(f"{hook.url}/alerts", "ALERT_SECRET")],
            environ={"ALERT_SECRET": secret},
            progress=False,
        )
        got = hook.received("/alerts")
    host = bad.url.removeprefix("http://")
    assert result.hosts_paused == (host,) and result.exhausted == 2
    events = [json.loads(r.body)["event"] for r in got]
    assert events == ["host.paused", "retries.exhausted"]
    paused = json.loads(got[0].body)
    assert paused["text"].startswith(f"postback-lab paused 1 host(s): {host}. ")
    assert paused["items"] == [
        {"host": host, "reason": "2 failed attempts in a row", "failures": 2}
    ]
    exhausted = json.loads(got[1].body)
    assert exhausted["items"] == [{"rule": "r", "host": host, "postbacks": 2}]
    h = got[0].headers
    expected = sign(secret, h["webhook-id"], got[0].body.decode(), float(h["webhook-timestamp"]))
    assert h["webhook-signature"] == expected["webhook-signature"]
    assert h["webhook-id"] == paused["id"]


def test_a_failing_alert_target_is_a_warning_not_an_error(tmp_path, capsys):
    with Receiver() as rx, Receiver() as hook:
        rx.set_script("/p", ["404"])
        hook.set_script("/alerts", ["500"])
        result = send_sync(
            make_plan([f"{rx.url}/p"]),
            tmp_path / "log.duckdb",
            notify=[(f"{hook.url}/alerts", None)],
            progress=False,
        )
    assert result.exhausted == 1
    err = capsys.readouterr().err
    assert f"warning: alert to {hook.url}/alerts failed: HTTP 500" in err


@pytest.mark.parametrize("bad", ["ftp://x", "hooks.example.com"])
def test_notify_must_be_http(bad):
    from postback_lab.sending import targets_of

    with pytest.raises(Exception, match="expected an http"):
        targets_of([bad])


def test_audit_fail_below_posts_and_dry_run_prints(tmp_path):
    db = tmp_path / "log.duckdb"
    with Receiver() as rx, Receiver() as hook:
        rx.set_script("/bad", ["404"])
        plan = make_plan([f"{rx.url}/ok", f"{rx.url}/bad"])
        send_sync(plan, db, progress=False)

        def cli(*args: str) -> subprocess.CompletedProcess[str]:
            return subprocess.run(
                [sys.executable, "-m", "postback_lab.cli", "audit", "--db", str(db), *args],
                capture_output=True,
                text=True,
                timeout=120,
            )

        posted = cli("--fail-below", "0.9", "--notify", f"{hook.url}/a", "--format", "json")
        dry = cli("--fail-below", "90%", "--notify", f"{hook.url}/a", "--dry-run")
        got = hook.received("/a")
    assert posted.returncode == 1 and dry.returncode == 1
    assert len(got) == 1  # the dry run posted nothing
    body = json.loads(got[0].body)
    assert body["event"] == "audit.below"
    assert body["text"] == "postback-lab audit: 1 group(s) below 90.0% delivered: rule=r 50.0%"
    assert body["items"] == [{"rule": "r", "delivery_rate": 0.5, "delivered": 1, "dispatches": 2}]
    assert "alert (dry run, not posted): " in dry.stderr
    assert '"event": "audit.below"' in dry.stderr
    with LogStore(db) as s:
        assert s.attempts().filter(pl.col("outcome") == "delivered").height == 1


def test_pause_thresholds_per_rule_apply_to_its_hosts(tmp_path):
    with Receiver() as strict, Receiver() as lenient:
        for rx in (strict, lenient):
            for i in range(6):
                rx.set_script(f"/p{i}", ["500"])
        rules = read_rules(
            [
                {
                    "name": "strict",
                    "url": strict.url + "/p{transaction_id}",
                    "pause": {"after": 2, "rate": 0, "cool_down": "30m"},
                },
                {"name": "lenient", "url": lenient.url + "/p{transaction_id}"},
            ]
        )
        assert rules["strict"].to_dict()["pause"] == {"after": 2, "rate": 0, "cool_down": "30m"}
        events = pl.DataFrame(
            {
                "transaction_id": [str(i) for i in range(6)],
                "event_type": "conversion",
                "status": "approved",
                "occurred_at": datetime.now(UTC) - timedelta(minutes=1),
            }
        )
        from postback_lab import backfill_sync

        LogStore(tmp_path / "log.duckdb").close()  # backfill sends what an existing log lacks
        r = backfill_sync(
            events,
            tmp_path / "log.duckdb",
            rules=rules,
            per_host=1,
            retry=Retry.none(),
            progress=False,
        )
        hits = (len(strict.received()), len(lenient.received()))
    # the strict rule's host pauses after 2 failures; the other keeps the run's breaker (10)
    assert hits == (2, 6)
    assert r.sent.hosts_paused == (strict.url.removeprefix("http://"),)
    with LogStore(tmp_path / "log.duckdb") as s:
        cool = host_health(s)["reason"].to_list()
    assert cool == ["2 failed attempts in a row"]


def test_bad_pause_and_retry_keys_name_the_field():
    with pytest.raises(Exception) as bad:
        read_rules(
            [
                {
                    "name": "a",
                    "url": "http://x.test/?t={transaction_id}",
                    "pause": {"aftr": 2, "rate": "200%"},
                    "retry": {"schedule": "soon"},
                }
            ]
        )
    text = str(bad.value)
    assert "field 'pause.aftr': unknown key (did you mean 'after'?)" in text
    assert "field 'pause.rate': '200%' is not a failure share; write 0.7 or 70%" in text
    assert "field 'retry.schedule': 'soon' is not a duration" in text


def test_send_cli_takes_retry_policies_from_the_rules_and_flags_override_them(tmp_path, write):
    with Receiver() as rx:
        rx.set_script("/p", ["500"])
        rules = write(
            "rules.yaml",
            f"""
            postbacks:
              - name: r
                url: {rx.url}/p?t={{transaction_id}}
                retry: {{schedule: [1h], for: 1d}}
            """,
        )
        events = tmp_path / "events.csv"
        pl.DataFrame(
            {
                "transaction_id": ["t1"],
                "event_type": ["conversion"],
                "status": ["approved"],
                "occurred_at": [datetime.now(UTC) - timedelta(minutes=1)],
            }
        ).write_csv(events)

        def cli(*args: str) -> subprocess.CompletedProcess[str]:
            return subprocess.run(
                [sys.executable, "-m", "postback_lab.cli", *args],
                capture_output=True,
                text=True,
                timeout=120,
            )

        plan = tmp_path / "plan.parquet"
        assert cli("plan", str(events), "--rules", str(rules), "-o", str(plan)).returncode == 0
        db1, db2 = tmp_path / "one.duckdb", tmp_path / "two.duckdb"
        kept = cli("send", str(plan), "--db", str(db1), "--rules", str(rules), "--no-progress")
        over = cli(
            "send",
            str(plan),
            "--db",
            str(db2),
            "--rules",
            str(rules),
            "--retries",
            "none",
            "--no-progress",
        )
    assert kept.returncode == 1 and "1 retries left due for a later run" in kept.stdout
    assert over.returncode == 1 and "left due" not in over.stdout
    with LogStore(db1) as s:
        assert retry_backlog(s)["next_try"].to_list() == [2]
    with LogStore(db2) as s:
        assert retry_backlog(s).height == 0


@pytest.mark.parametrize("bad", ["https://hooks.test/x", [("ftp://x", None)], [("https://x",)]])
def test_notify_option_is_checked_once(bad):
    from postback_lab import InputError
    from postback_lab.sending import SendOptions

    with pytest.raises(InputError, match="must be \\(webhook URL, secret variable or None\\)"):
        SendOptions(notify=bad)
