"""The bottom layer's parsers, directly: durations, points in time, the dispatch key and
the first line of an error (each said once, used by every stage)."""

from __future__ import annotations

import hashlib
from datetime import UTC, date, datetime, timedelta, timezone

import polars as pl
import pytest

from postback_lab import InputError
from postback_lab._util import (
    dispatch_ids,
    first_line,
    format_duration,
    parse_duration,
    parse_when,
    quote_ident,
)


@pytest.mark.parametrize(
    ("given", "seconds"),
    [
        (90, 90),
        (1.5, 1.5),
        ("90s", 90),
        ("2m", 120),
        ("1h30m", 5400),
        ("1.5d", 129_600),
        (" 1 H 30 M ", 5400),
        (timedelta(minutes=3), 180),
        (0, 0),
        ("90", 90),  # text without a unit is seconds, as the number is
        (" 1.5 ", 1.5),
        ("0", 0),
    ],
)
def test_durations_as_users_write_them(given, seconds):
    assert parse_duration(given) == timedelta(seconds=seconds)


@pytest.mark.parametrize(
    "bad", ["", "-90", "1h30", "1.", "soon", "5x", "m5", "-5s", -1, True, timedelta(seconds=-1)]
)
def test_what_is_not_a_duration_is_a_value_error(bad):
    with pytest.raises(ValueError):
        parse_duration(bad)


@pytest.mark.parametrize(
    ("delta", "text"),
    [
        (timedelta(minutes=2), "2m"),
        (timedelta(hours=1), "1h"),
        (timedelta(days=2), "2d"),
        (timedelta(seconds=90), "90s"),
        (timedelta(seconds=1.5), "1.5s"),
        (timedelta(0), "0s"),
    ],
)
def test_format_duration_is_the_shortest_text_read_back_exactly(delta, text):
    assert format_duration(delta) == text
    assert parse_duration(text) == delta


def test_points_in_time_are_utc():
    assert parse_when(None) is None
    assert parse_when(date(2026, 11, 1)) == datetime(2026, 11, 1, tzinfo=UTC)
    assert parse_when(datetime(2026, 11, 1, 12)) == datetime(2026, 11, 1, 12, tzinfo=UTC)
    plus2 = datetime(2026, 11, 1, 14, tzinfo=timezone(timedelta(hours=2)))
    assert parse_when(plus2) == datetime(2026, 11, 1, 12, tzinfo=UTC)
    assert parse_when("2026-11-01") == datetime(2026, 11, 1, tzinfo=UTC)
    assert parse_when("2026-11-01T12:00:00Z") == datetime(2026, 11, 1, 12, tzinfo=UTC)


def test_a_bad_time_names_the_argument():
    with pytest.raises(InputError) as caught:
        parse_when("yesterday-ish", name="since")
    assert str(caught.value) == (
        "since='yesterday-ish' is not a date or time; write e.g. 2026-11-01 or 2026-11-01T12:00:00Z"
    )


def test_the_dispatch_key_is_md5_of_rule_transaction_and_status():
    frame = pl.DataFrame(
        {
            "rule": ["r", "r", None],
            "transaction_id": ["T1", "T1", "T2"],
            "status": ["approved", "rejected", "approved"],
        }
    )

    def md5(*parts: str) -> str:
        return hashlib.md5("\x1f".join(parts).encode()).hexdigest()

    assert dispatch_ids(frame).to_list() == [
        md5("r", "T1", "approved"),
        md5("r", "T1", "rejected"),
        None,  # a part is missing: no dispatch
    ]


def test_first_line_and_quoted_identifiers():
    assert first_line(ValueError("one\ntwo")) == "one"
    assert first_line(ValueError()) == "ValueError"
    assert quote_ident('a.b"c') == '"a"."b""c"'
