"""Macro filters (value maps, time formats, defaults), columns with spaces and rules in
another platform's dialect render to exact URLs."""

from __future__ import annotations

import polars as pl
import pytest

from postback_lab import RuleValidationError, build_plan, read_rules

EVENTS = pl.DataFrame(
    {
        "transaction_id": ["t1", "t2", "t3"],
        "status": ["approved", "rejected", "pending"],
        "occurred_at": ["2026-11-01T23:30:00Z", "2026-11-02T08:00:05Z", "2026-11-02T09:00:00Z"],
        "sub2": ["a b", None, "c"],
        "Landing Page": ["/promo x", "/b", None],
        "click_id": ["k1", "k2", "k3"],
        "payout": [1.5, 2.0, 12.0],
    }
)


def _urls(url: str, **rule: object) -> list[str | None]:
    rules = read_rules([{"name": "r", "fire_on": "all", "url": url, **rule}])
    return build_plan(EVENTS, rules).frame.sort("transaction_id")["url"].to_list()


def test_value_map_passes_unmapped_values() -> None:
    assert _urls("https://h.example/?s={status|map:approved=1,rejected=2}") == [
        "https://h.example/?s=1",
        "https://h.example/?s=2",
        "https://h.example/?s=pending",
    ]


def test_time_format_and_zone() -> None:
    assert _urls("https://h.example/?d={occurred_at|format:%Y-%m-%d %H:%M|tz:Europe/Berlin}") == [
        "https://h.example/?d=2026-11-02%2000%3A30",
        "https://h.example/?d=2026-11-02%2009%3A00",
        "https://h.example/?d=2026-11-02%2010%3A00",
    ]
    assert _urls("https://h.example/?u={raw:occurred_at|format:%s}") == [
        "https://h.example/?u=1793575800",
        "https://h.example/?u=1793606405",
        "https://h.example/?u=1793610000",
    ]


def test_default_fires_rows_missing_a_value() -> None:
    assert _urls("https://h.example/?s={sub2}") == [
        "https://h.example/?s=a%20b",
        "https://h.example/?s=c",
    ]
    assert _urls("https://h.example/?s={sub2|default:none}") == [
        "https://h.example/?s=a%20b",
        "https://h.example/?s=none",
        "https://h.example/?s=c",
    ]


def test_a_column_with_spaces_is_a_macro() -> None:
    assert _urls("https://h.example/lp?p={Landing Page|default:-}") == [
        "https://h.example/lp?p=%2Fpromo%20x",
        "https://h.example/lp?p=%2Fb",
        "https://h.example/lp?p=-",
    ]


def test_format_on_a_column_that_is_not_a_time_is_an_error() -> None:
    with pytest.raises(RuleValidationError, match="format and tz apply to timestamps"):
        _urls("https://h.example/?x={payout|format:%Y}")


@pytest.mark.parametrize(
    ("macro", "message"),
    [
        ("{status|upper}", "unknown filter 'upper'"),
        ("{status|map:approved}", "write value maps as map:approved=1,rejected=2"),
        ("{occurred_at|tz:Mars/Base}", "unknown time zone 'Mars/Base'"),
        ("{env:K|default:x}", "{env:NAME} takes no filters"),
    ],
)
def test_bad_filters(macro: str, message: str) -> None:
    with pytest.raises(RuleValidationError, match=message.replace("{", r"\{").replace("|", r"\|")):
        read_rules([{"name": "r", "url": "https://h.example/?x=" + macro}])


def test_cake_dialect_rule_fires_exact_urls() -> None:
    urls = _urls("https://h.example/pb?cid=#s2#&amt=#price#&t=#leadid#", dialect="cake")
    assert urls == [
        "https://h.example/pb?cid=a%20b&amt=1.5&t=t1",
        "https://h.example/pb?cid=c&amt=12&t=t3",
    ]


def test_read_rules_dialect_and_its_notes() -> None:
    rules = read_rules(
        [{"name": "r", "url": "https://h.example/?c={transaction_id}&s={aff_sub2}"}], dialect="tune"
    )
    assert rules["r"].url.text == "https://h.example/?c={click_id}&s={sub2}"
    assert rules["r"].translations == (
        "url: {transaction_id} -> {click_id}: TUNE's transaction_id is its click id",
        "url: {aff_sub2} -> {sub2}: affiliate sub id 2",
    )
    # written back in our syntax, so a copy is not translated twice
    assert rules["r"].replace(enabled=False).url.text == "https://h.example/?c={click_id}&s={sub2}"


def test_keitaro_status_map_in_a_plan() -> None:
    assert _urls("https://h.example/?s={status:lead=0 sale=1 rejected=2}", dialect="keitaro") == [
        "https://h.example/?s=1",
        "https://h.example/?s=2",
        "https://h.example/?s=0",
    ]
