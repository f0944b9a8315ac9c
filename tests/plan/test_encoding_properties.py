"""Property tests: any value decodes back to itself and never adds URL structure."""

from __future__ import annotations

from urllib.parse import parse_qs, unquote, urlsplit

import polars as pl
from hypothesis import given, settings
from hypothesis import strategies as st

from postback_lab import build_plan, read_rules
from postback_lab.plan._render import url_encode

RULES = read_rules(
    [
        {
            "name": "r",
            "url": "https://h.example/a/{sub1}/b?x={sub2}&y=1",
        }
    ]
)
text = st.text(
    st.characters(codec="utf-8", exclude_categories=["Cs"], exclude_characters="\x00"),
    min_size=1,
    max_size=40,
)


@settings(max_examples=150, deadline=None)
@given(text, text)
def test_values_round_trip_and_cannot_inject(sub1, sub2):
    frame = pl.DataFrame(
        {
            "transaction_id": ["t"],
            "status": ["approved"],
            "occurred_at": ["2024-01-01"],
            "sub1": [sub1],
            "sub2": [sub2],
        }
    )
    url = build_plan(frame, RULES).frame["url"][0]
    parts = urlsplit(url)
    assert parts.netloc == "h.example" and parts.fragment == ""
    segs = parts.path.split("/")
    assert len(segs) == 4 and segs[:2] == ["", "a"] and segs[3] == "b"
    assert unquote(segs[2], errors="strict") == sub1
    assert parse_qs(parts.query, keep_blank_values=True, errors="strict") == {
        "x": [sub2],
        "y": ["1"],
    }


@given(text)
def test_url_encode_matches_the_unreserved_set(value):
    from urllib.parse import quote

    assert url_encode(pl.Series([value])).to_list() == [quote(value, safe="-._~")]


def test_url_encode_is_the_same_whether_values_repeat_or_not():
    """Mostly distinct values (encoded as a whole column) and repeated ones (encoded once
    per distinct value) give the same text, nulls and safe values left alone."""
    from urllib.parse import quote

    distinct = [f"2024-01-01T00:{i // 60:02d}:{i % 60:02d} é/{i}" for i in range(30_000)]
    values = [*distinct, None, "plain-1.2_~", "a b"]
    expected = [None if v is None else quote(v, safe="-._~") for v in values]
    assert url_encode(pl.Series(values)).to_list() == expected
    repeated = [values[i % 7] for i in range(30_000)]
    assert url_encode(pl.Series(repeated)).to_list() == [expected[i % 7] for i in range(30_000)]


@settings(max_examples=100, deadline=None)
@given(st.lists(text, min_size=1, max_size=30))
def test_python_and_duckdb_encoders_agree(values):
    """Few distinct values are encoded by ``urllib.parse.quote``, many by DuckDB's
    ``url_encode``: the two must write the same text for any value."""
    from postback_lab._util import query

    by_duckdb = query("SELECT url_encode(v) AS e FROM t", t=pl.Series("v", values).to_frame())
    assert url_encode(pl.Series(values)).to_list() == by_duckdb["e"].to_list()
