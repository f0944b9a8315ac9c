"""SendOptions validated once, the real signatures of send/send_sync, retries per run,
and a result that reads its rows through the caller's open store."""

from __future__ import annotations

import dataclasses
import inspect
import re
from dataclasses import fields
from datetime import timedelta

import httpx
import pytest

import postback_lab as pbl
from postback_lab import InputError, LogStore, Retry, SendOptions, backfill_sync, send_sync
from postback_lab.auditing import BACKFILL_DEFAULTS

from .conftest import make_plan

ONE_RETRY = Retry(delays=(0,), jitter=0)


def always(code: int) -> httpx.MockTransport:
    return httpx.MockTransport(lambda request: httpx.Response(code))


def test_engine_is_checked_with_one_default():
    assert SendOptions().engine == "aiohttp"
    assert SendOptions(engine="httpx").engine == "httpx"
    with pytest.raises(InputError, match=r"engine='curl' is not one of 'aiohttp', 'httpx'"):
        SendOptions(engine="curl")  # type: ignore[arg-type]


def test_engine_is_checked_before_anything_is_sent(db):
    with pytest.raises(InputError, match="engine='httpcore'"):
        send_sync(make_plan(["http://mock.test/p"]), db, engine="httpcore")  # type: ignore[arg-type]
    assert not db.exists()


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"concurrency": 0}, "concurrency=0 must be a whole number >= 1"),
        ({"per_host": 2.5}, "per_host=2.5 must be a whole number >= 1"),
        ({"rate": 0}, "rate=0 must be a number more than 0"),
        ({"timing": "asap"}, "timing='asap' must be 'due', 'now' or Replay(speed)"),
        ({"timing": 60}, "timing=60 must be 'due', 'now' or Replay(speed)"),
        ({"max_duration": -5}, "max_duration=-5 must be 0 or more seconds"),
        ({"retry": "short"}, "retry='short' must be a Retry"),
        ({"allow_hosts": "a.example"}, "allow_hosts='a.example' must be a list"),
    ],
)
def test_options_are_validated_when_built(kwargs, message):
    with pytest.raises(InputError, match=re.escape(message)):
        SendOptions(**kwargs)


def test_a_replay_speed_is_checked_when_built():
    with pytest.raises(InputError, match=r"Replay speed=-1\.0 must be a number more than 0"):
        pbl.Replay(-1.0)
    assert SendOptions(timing=pbl.Replay(60)).replay_speed == 60
    assert SendOptions(timing="now").fire_now and not SendOptions().fire_now
    assert SendOptions().replay_speed is None


def test_options_are_a_comparable_value():
    a = SendOptions(max_duration=90, allow_hosts=["*.example.com"])
    assert a.max_duration == timedelta(seconds=90) and a.retry_window == timedelta(seconds=90)
    assert a.allow_hosts == ("*.example.com",)
    assert a == SendOptions(max_duration=timedelta(seconds=90), allow_hosts=("*.example.com",))
    assert "SendOptions(concurrency=64, per_host=8" in repr(SendOptions())
    with pytest.raises(AttributeError):
        a.concurrency = 3  # type: ignore[misc]


@pytest.mark.parametrize("fn", [pbl.send, pbl.send_sync, pbl.backfill, pbl.backfill_sync])
def test_send_and_backfill_show_every_option(fn):
    params = inspect.signature(fn).parameters
    assert not any(p.kind is p.VAR_KEYWORD or p.kind is p.VAR_POSITIONAL for p in params.values())
    # backfill retries briefly by default (someone is waiting for it); the rest as send
    backfills = fn in (pbl.backfill, pbl.backfill_sync)
    defaults = BACKFILL_DEFAULTS if backfills else SendOptions()
    assert backfills == (defaults.retry == Retry.short() and defaults.max_duration is not None)
    for f in fields(SendOptions):
        assert params[f.name].kind is inspect.Parameter.KEYWORD_ONLY
        assert params[f.name].default == getattr(defaults, f.name), f.name
    assert "options" in params


def test_sync_twins_have_the_same_signature():
    assert inspect.signature(pbl.send_sync) == inspect.signature(pbl.send)
    assert inspect.signature(pbl.backfill_sync) == inspect.signature(pbl.backfill)
    assert pbl.send_sync.__name__ == "send_sync" and "for scripts" in pbl.send_sync.__doc__
    assert not inspect.iscoroutinefunction(pbl.send_sync)


def test_options_value_or_keywords_not_both(db):
    plan = make_plan(["http://mock.test/p"])
    opts = SendOptions(dry_run=True, progress=False)
    assert send_sync(plan, db, options=opts).rehearsed == 1
    with pytest.raises(InputError, match="either as options= or as keywords"):
        send_sync(plan, db, options=opts, per_host=2)


@pytest.mark.parametrize("call", [send_sync, backfill_sync])
def test_a_keyword_given_with_options_is_named_not_dropped(db, call):
    """A transport compares equal to every other (compare=False): it was dropped before."""
    plan = make_plan(["http://mock.test/p"])
    send_sync(plan, db, dry_run=True, progress=False)  # backfill needs an existing log
    opts = SendOptions(progress=False)
    with pytest.raises(InputError, match=r"options= was given with transport=, environ=: "):
        call(plan, db, options=opts, transport=always(204), environ={"A": "b"})
    with LogStore(db) as s:
        assert s.sql("SELECT count(*) FROM postback_log").item() == 1  # nothing sent
    with pytest.raises(InputError, match=r"options=\{\} must be a SendOptions"):
        send_sync(plan, db, options={})  # type: ignore[arg-type]


def test_retries_belong_to_a_run_and_attempt_numbers_keep_counting(db):
    """A backfill of a postback that failed gets its full schedule again; the log numbers
    its attempts after the earlier ones."""
    plan = make_plan(["http://mock.test/p"])
    first = send_sync(plan, db, retry=ONE_RETRY, transport=always(500), progress=False)
    assert (first.attempts, first.failed) == (2, 1)
    again = backfill_sync(plan, db, retry=ONE_RETRY, transport=always(500), progress=False)
    assert again.sent is not None and (again.sent.attempts, again.sent.failed) == (2, 1)
    with LogStore(db) as s:
        rows = s.sql("SELECT run_id, attempt, outcome FROM postback_log ORDER BY attempt").rows()
    assert [(a, o) for _, a, o in rows] == [
        (1, "failed"),
        (2, "failed"),
        (3, "failed"),
        (4, "failed"),
    ]
    assert rows[0][0] == rows[1][0] == first.run_id != rows[2][0] == rows[3][0]


def test_dry_runs_use_no_tries(db):
    plan = make_plan(["http://mock.test/p"])
    send_sync(plan, db, dry_run=True, progress=False)
    real = send_sync(plan, db, retry=ONE_RETRY, transport=always(503), progress=False)
    assert real.attempts == 2
    with LogStore(db) as s:
        rows = s.sql("SELECT attempt, outcome FROM postback_log ORDER BY attempt").rows()
    assert rows == [(1, "dry_run"), (2, "failed"), (3, "failed")]


def test_to_polars_reads_through_the_callers_open_store(db):
    plan = make_plan(["http://mock.test/p", "http://mock.test/q"])
    with LogStore(db) as log:
        result = send_sync(plan, log, transport=always(204), progress=False)
        rows = result.to_polars()  # the store is open in this process: read through it
        assert rows.select("transaction_id", "status_code", "outcome").rows() == [
            ("t0", 204, "delivered"),
            ("t1", 204, "delivered"),
        ]
    assert result.to_polars().height == 2  # closed: read from the file
    assert dataclasses.asdict(result)["delivered"] == 2  # the store is not a field


def test_a_log_argument_that_is_not_a_log_is_named(db):
    from postback_lab import read_rules

    with pytest.raises(
        InputError, match="log must be a LogStore, a DuckDB file path or None, not a RuleSet"
    ):
        send_sync(
            make_plan(["http://mock.test/p"]),
            read_rules([{"name": "r", "url": "https://a.example/"}]),
        )  # type: ignore[arg-type]
