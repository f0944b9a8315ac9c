"""Delays with an injectable clock, retry policy and Retry-After parsing (no sleeping)."""

from __future__ import annotations

import random
from datetime import UTC, datetime, timedelta

import httpx
import pytest

from postback_lab.sending import FakeClock, Replay, Retry, parse_retry_after, send_sync
from postback_lab.store import LogStore

from .conftest import make_plan


def test_nothing_fires_before_due_and_past_due_fires_at_once(receiver, db):
    start = datetime(2030, 1, 1, 12, tzinfo=UTC)
    due = [start - timedelta(hours=1), start + timedelta(seconds=30), start + timedelta(minutes=5)]
    clock = FakeClock(start)
    send_sync(
        make_plan([f"{receiver.url}/p?i={i}" for i in range(3)], due=due),
        db,
        clock=clock,
        progress=False,
    )
    with LogStore(db) as s:
        fired = s.attempts().sort("due_at")["fired_at"].to_list()
    assert fired == [start, due[1], due[2]]


def test_replay_speed_maps_the_timeline_onto_now(receiver, db):
    start = datetime(2030, 1, 1, tzinfo=UTC)
    old = datetime(2024, 1, 1, tzinfo=UTC)
    due = [old, old + timedelta(minutes=10), old + timedelta(minutes=20)]
    send_sync(
        make_plan([f"{receiver.url}/p?i={i}" for i in range(3)], due=due),
        db,
        clock=FakeClock(start),
        timing=Replay(60),
        progress=False,
    )
    with LogStore(db) as s:
        fired = s.attempts().sort("due_at")["fired_at"].to_list()
    assert fired == [start, start + timedelta(seconds=10), start + timedelta(seconds=20)]


def test_timing_now_fires_what_is_not_due_yet_at_once(receiver, db):
    start = datetime(2030, 1, 1, tzinfo=UTC)
    due = [start + timedelta(hours=1), start + timedelta(days=2)]
    send_sync(
        make_plan([f"{receiver.url}/p?i={i}" for i in range(2)], due=due),
        db,
        clock=FakeClock(start),
        timing="now",
        progress=False,
    )
    with LogStore(db) as s:
        fired = s.attempts().sort("due_at")["fired_at"].to_list()
    assert fired == [start, start]


def test_retry_schedule_jitter_never_early_and_hint_capped():
    r = Retry(delays=(5, 300), jitter=0.1, max_retry_after=60)
    rng = random.Random(1)
    waits = [r.wait(1, rng=rng) for _ in range(200)]
    assert min(waits) >= 5 and max(waits) <= 5.5
    assert r.wait(3) is None
    assert 60 <= r.wait(1, "3600", rng=rng) <= 66  # hint capped at 60
    assert 300 <= r.wait(2, "10", rng=rng) <= 330  # schedule wins over a smaller hint


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        ("120", 120.0),
        ("Wed, 01 Jan 2030 12:00:30 GMT", 30.0),
        ("soon", None),
        ("", None),
        (None, None),
        ("-5", None),
    ],
)
def test_parse_retry_after(value, expected):
    assert parse_retry_after(value, datetime(2030, 1, 1, 12, tzinfo=UTC)) == expected


def test_retry_classification_with_mock_transport(db):
    answers = iter([httpx.Response(503), httpx.Response(408), httpx.Response(400)])

    def handler(request: httpx.Request) -> httpx.Response:
        return next(answers)

    plan = make_plan(["http://mock.test/p"])
    result = send_sync(
        plan,
        db,
        transport=httpx.MockTransport(handler),
        retry=Retry(delays=(0, 0, 0, 0), jitter=0),
        progress=False,
    )
    with LogStore(db) as s:
        codes = s.attempts()["status_code"].to_list()
    assert codes == [503, 408, 400]  # 400 is final: no fourth attempt
    assert result.failed == 1


def test_max_duration_drops_late_retries(db):
    def handler(request: httpx.Request) -> httpx.Response:
        return httpx.Response(500)

    result = send_sync(
        make_plan(["http://mock.test/p"]),
        db,
        transport=httpx.MockTransport(handler),
        retry=Retry(delays=(0, 600)),
        max_duration=60,
        progress=False,
    )
    assert result.attempts == 2 and result.failed == 1


def test_missing_env_secret_is_an_input_error_before_sending(db, monkeypatch):
    from postback_lab import InputError

    monkeypatch.delenv("PBL_TEST_TOKEN", raising=False)
    plan = make_plan(["http://mock.test/p?k={env:PBL_TEST_TOKEN}"])
    with pytest.raises(InputError, match="PBL_TEST_TOKEN"):
        send_sync(plan, db, progress=False)


def test_env_secret_is_sent_but_never_logged(receiver, db, monkeypatch):
    monkeypatch.setenv("PBL_TEST_TOKEN", "s3cr3t-value")
    plan = make_plan(
        [f"{receiver.url}/p?k={{env:PBL_TEST_TOKEN}}"],
        headers='{"Authorization": "Bearer {env:PBL_TEST_TOKEN}"}',
    )
    send_sync(plan, db, progress=False)
    got = receiver.received()[0]
    assert got.query == [("k", "s3cr3t-value")]
    assert got.headers["authorization"] == "Bearer s3cr3t-value"
    with LogStore(db) as s:
        logged = s.attempts()
    assert logged["url"].to_list() == [f"{receiver.url}/p?k={{env:PBL_TEST_TOKEN}}"]
    assert "s3cr3t" not in str(logged.rows())
