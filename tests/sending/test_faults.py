"""The fault matrix over a real socket: every attempt is a log row with the right outcome."""

from __future__ import annotations

from collections import Counter
from datetime import UTC, datetime, timedelta

import polars as pl

from postback_lab.receiver import Receiver
from postback_lab.sending import FakeClock, Retry, send_sync
from postback_lab.store import LogStore

from .conftest import make_plan

FAST = Retry(delays=(0.01, 0.01, 0.01), jitter=0.0)


def attempts(db) -> pl.DataFrame:
    with LogStore(db) as s:
        return s.attempts()


def test_always_500_with_n_retries_logs_exactly_1_plus_n(receiver, db):
    receiver.set_script("/p", ["500"])
    result = send_sync(make_plan([f"{receiver.url}/p?x=1"]), db, retry=FAST, progress=False)
    rows = attempts(db)
    assert rows.select("attempt", "status_code", "outcome").rows() == [
        (1, 500, "failed"),
        (2, 500, "failed"),
        (3, 500, "failed"),
        (4, 500, "failed"),
    ]
    assert len(receiver.received("/p")) == 4
    assert result.failed == 1 and result.delivered == 0 and result.has_failures


def test_retry_then_delivered_and_second_run_sends_nothing(receiver, db):
    receiver.set_script("/p", ["503", "502", "200"])
    plan = make_plan([f"{receiver.url}/p"])
    first = send_sync(plan, db, retry=FAST, progress=False)
    assert (first.delivered, first.attempts) == (1, 3)
    with LogStore(db) as s:  # the run marked its retried first attempt when it finished
        assert s.retried_upto() == 2
        marks = s.sql("SELECT attempt, retried FROM postback_log ORDER BY attempt").rows()
    assert marks == [(1, True), (2, False), (3, False)]
    second = send_sync(plan, db, retry=FAST, progress=False)
    assert (second.attempts, second.skipped_delivered) == (0, 1)
    assert len(receiver.received("/p")) == 3


def test_429_retry_after_is_honoured(receiver, db):
    receiver.set_script("/p", ["429:1", "200"])
    start = datetime(2030, 1, 1, tzinfo=UTC)
    clock = FakeClock(start)  # time moves only when the sender waits: exact, no sleeping
    send_sync(make_plan([f"{receiver.url}/p"]), db, retry=FAST, clock=clock, progress=False)
    got = receiver.received("/p")
    assert [r.answer for r in got] == ["429:1", "200"]
    rows = attempts(db)
    assert rows["outcome"].to_list() == ["failed", "delivered"]
    # the 0.01s schedule was raised to the 1s hint
    assert rows["fired_at"].to_list() == [start, start + timedelta(seconds=1)]


def test_timeout_reset_redirect_and_final_4xx(receiver, db):
    for path, answer in (
        ("/hang", "hang"),
        ("/reset", "reset"),
        ("/moved", "308"),
        ("/gone", "404"),
    ):
        receiver.set_script(path, [answer])
    plan = make_plan(
        [
            f"{receiver.url}/hang",
            f"{receiver.url}/reset",
            f"{receiver.url}/moved",
            f"{receiver.url}/gone",
        ],
        timeout_s=0.5,
    )
    result = send_sync(plan, db, retry=Retry.none(), progress=False)
    rows = {r["url"].rsplit("/", 1)[1]: r for r in attempts(db).iter_rows(named=True)}
    assert rows["hang"]["outcome"] == "timeout" and rows["hang"]["status_code"] is None
    assert rows["reset"]["outcome"] == "connection_error"
    assert rows["moved"]["outcome"] == "failed" and rows["moved"]["status_code"] == 308
    assert "not followed" in rows["moved"]["error"]
    assert receiver.received("/redirected") == []
    assert rows["gone"]["status_code"] == 404
    assert result.failed == 4


def test_404_is_final_but_timeouts_are_retried(receiver, db):
    receiver.set_script("/gone", ["404"])
    receiver.set_script("/hang", ["hang", "200"])
    plan = make_plan([f"{receiver.url}/gone", f"{receiver.url}/hang"], timeout_s=0.3)
    send_sync(plan, db, retry=FAST, progress=False)
    assert len(receiver.received("/gone")) == 1
    assert [r.answer for r in receiver.received("/hang")] == ["hang", "200"]


def test_oversized_response_is_capped_in_the_log(receiver, db):
    receiver.set_script("/big", ["big"])
    send_sync(make_plan([f"{receiver.url}/big"]), db, progress=False)
    row = attempts(db).row(0, named=True)
    assert row["outcome"] == "delivered" and len(row["response_body"]) == 1024


def test_a_hung_host_does_not_stall_the_others(db):
    with Receiver() as slow, Receiver() as fast:
        slow.set_script("/p", ["hang"])
        urls = [f"{slow.url}/p?i={i}" for i in range(6)] + [
            f"{fast.url}/q?i={i}" for i in range(60)
        ]
        result = send_sync(
            make_plan(urls, timeout_s=3),
            db,
            retry=Retry.none(),
            concurrency=8,
            per_host=2,
            progress=False,
        )
    assert len(fast.received()) == 60
    assert result.delivered == 60 and result.failed == 6
    # in order, not against a stopwatch: every fast postback was answered before the
    # first slow one gave up (the slow host held 2 of the 8 slots, never all of them)
    rows = attempts(db).with_columns(
        done=pl.col("fired_at") + pl.duration(milliseconds=pl.col("latency_ms"))
    )
    fast_done = rows.filter(pl.col("url").str.contains("/q"))["done"].max()
    first_timeout = rows.filter(pl.col("outcome") == "timeout")["done"].min()
    assert fast_done < first_timeout


def test_idempotency_key_and_exactly_once_over_four_hosts(db):
    receivers = [Receiver().start() for _ in range(4)]
    try:
        urls = [f"{receivers[i % 4].url}/pb?n={i}" for i in range(5000)]
        plan = make_plan(urls)
        result = send_sync(plan, db, concurrency=32, per_host=8, progress=False)
        keys = Counter(r.headers["idempotency-key"] for rx in receivers for r in rx.received())
    finally:
        for rx in receivers:
            rx.stop()
    assert result.delivered == 5000
    assert set(keys) == set(plan.frame["dispatch_id"]) and set(keys.values()) == {1}
    delivered = attempts(db).filter(pl.col("outcome") == "delivered")
    assert delivered.height == 5000 and delivered["dispatch_id"].n_unique() == 5000


def test_dry_run_opens_no_socket(receiver, db):
    result = send_sync(
        make_plan([f"{receiver.url}/p", f"{receiver.url}/q"]), db, dry_run=True, progress=False
    )
    assert receiver.received() == []
    assert attempts(db)["outcome"].to_list() == ["dry_run", "dry_run"]
    assert result.rehearsed == 2 and not result.has_failures


def test_both_engines_classify_every_fault_the_same(receiver, tmp_path):
    from postback_lab.sending import ENGINES

    answers = {
        "ok": "200",
        "hang": "hang",
        "reset": "reset",
        "moved": "308",
        "gone": "404",
        "busy": "503",
        "big": "big",
    }
    for path, answer in answers.items():
        receiver.set_script(f"/{path}", [answer])
    seen = {}
    for engine in ENGINES:
        plan = make_plan(
            [f"{receiver.url}/{p}?e={engine}" for p in answers], timeout_s=0.5, rule=engine
        )
        db = tmp_path / f"{engine}.duckdb"
        send_sync(plan, db, retry=Retry.none(), progress=False, engine=engine)
        rows = attempts(db).with_columns(pl.col("url").str.extract(r"/(\w+)\?").alias("p"))
        seen[engine] = sorted(
            rows.select(
                "p", "outcome", "status_code", pl.col("response_body").str.len_chars()
            ).rows()
        )
    assert seen["httpx"] == seen["aiohttp"]
    assert seen["httpx"] == [
        ("big", "delivered", 200, 1024),
        ("busy", "failed", 503, 19),
        ("gone", "failed", 404, 9),
        ("hang", "timeout", None, None),
        ("moved", "failed", 308, 18),
        ("ok", "delivered", 200, 2),
        ("reset", "connection_error", None, None),
    ]
