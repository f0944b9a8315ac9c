"""Macro dialects: a URL pasted from another platform becomes ours, every change noted."""

import pytest

from postback_lab.rules._dialects import DIALECTS, foreign_hint, translate


@pytest.mark.parametrize(
    ("dialect", "url", "ours"),
    [
        (
            "cake",
            "https://a.example/pb?cid=#s2#&amt=#price#&l=#leadid#&a=#affid#&o=#oid#",
            "https://a.example/pb?cid={sub2}&amt={payout}&l={transaction_id}"
            "&a={publisher_id}&o={offer_id}",
        ),
        (
            "tune",
            "https://a.example/?s={aff_sub}&s3={aff_sub3}&t={transaction_id}&p={payout}",
            "https://a.example/?s={sub1}&s3={sub3}&t={click_id}&p={payout}",
        ),
        (
            "everflow",
            "https://a.example/?t={transaction_id}&c={conversion_id}&s1={sub1}",
            "https://a.example/?t={click_id}&c={transaction_id}&s1={sub1}",
        ),
        (
            "keitaro",
            "https://a.example/?c={subid}&e={external_id}&t={tid}&r={revenue}",
            "https://a.example/?c={click_id}&e={external_transaction_id}&t={transaction_id}"
            "&r={payout}",
        ),
        (
            "keitaro",
            "https://a.example/?s={status:lead=0 sale=1 rejected=2}&e={_external_id}",
            "https://a.example/?s={status|map:pending=0,approved=1,rejected=2}"
            "&e={raw:external_transaction_id}",
        ),
        (
            "keitaro",
            "https://a.example/?d={date:Y-m-d H:i:s,Europe/Kyiv}&u={date:U}",
            "https://a.example/?d={occurred_at|format:%Y-%m-%d %H:%M:%S|tz:Europe/Kyiv}"
            "&u={occurred_at|format:%s}",
        ),
        (
            "affise",
            "https://a.example/?p={sum}&o={offerid}&s={status}&c={sub2}",
            "https://a.example/?p={payout}&o={offer_id}"
            "&s={status|map:approved=1,pending=2,rejected=3}&c={sub2}",
        ),
        (
            "voluum",
            "https://a.example/?cid={externalid}&p={payout}",
            "https://a.example/?cid={external_transaction_id}&p={payout}",
        ),
        (
            "binom",
            "https://a.example/?cid={externalid}&c={clickid}",
            "https://a.example/?cid={external_transaction_id}&c={click_id}",
        ),
        (  # the traffic source postback tokens of docs.binom.org/conv-to-source-v2.php
            "binom",
            "https://a.example/?cid={externalid}&s={cnv_status}&cur={cnv_currency}",
            "https://a.example/?cid={external_transaction_id}&s={status}&cur={currency}",
        ),
        (
            "integr8",
            "https://a.example/?clickid={external_transaction_id}",
            "https://a.example/?clickid={external_transaction_id}",
        ),
    ],
)
def test_translates_each_dialect(dialect: str, url: str, ours: str) -> None:
    t = translate(url, dialect)
    assert t.ok, t.problems
    assert t.text == ours


def test_every_change_is_explained() -> None:
    t = translate("https://a.example/pb?cid=#s2#&amt=#price#", "cake")
    assert t.notes == (
        "#s2# -> {sub2}: sub id 2",
        "#price# -> {payout}: CAKE calls the payout 'price'",
    )


def test_unknown_platform_macro_is_an_error_naming_the_closest_column() -> None:
    t = translate("https://a.example/?c=#campid#&ip=#sourceip#", "cake", columns=["camp_id", "ip"])
    assert t.text == "https://a.example/?c=#campid#&ip=#sourceip#"
    assert not t.ok
    assert (
        "CAKE macro #campid# has no postback_lab column; closest column: {camp_id}" in t.problems[0]
    )


def test_unknown_macro_matching_an_events_column_is_kept() -> None:
    t = translate("https://a.example/?ip=#ip#", "cake", columns=["transaction_id", "IP"])
    assert t.ok
    assert t.text == "https://a.example/?ip={IP}"


def test_unknown_dialect() -> None:
    with pytest.raises(KeyError, match="unknown dialect 'kake'; valid: cake"):
        translate("https://a.example/", "kake")


def test_every_dialect_cites_its_page() -> None:
    assert all(d.docs.startswith("https://") for d in DIALECTS.values())


@pytest.mark.parametrize(
    ("url", "platform"),
    [
        ("https://a.example/pb?cid=#s2#", "dialect: cake"),
        ("https://a.example/pb?cid={aff_sub}", "dialect: tune"),
        ("https://a.example/pb?cid={_subid}", "dialect: keitaro"),
        ("https://a.example/pb?s={status:lead=0 sale=1}", "dialect: keitaro"),
        ("https://a.example/pb?p={sum}", "dialect: affise"),
        ("https://a.example/pb?c={externalid}", "dialect: voluum"),
    ],
)
def test_foreign_syntax_is_named(url: str, platform: str) -> None:
    hint = foreign_hint(url)
    assert hint is not None and platform in hint


def test_our_syntax_is_not_foreign() -> None:
    assert foreign_hint("https://a.example/?c={external_transaction_id}&s={sub1|default:x}") is None
