"""``{raw:name}`` in a URL: a value that already is a URL part keeps what a URL may hold
(``a=1&b=%41``), and what cannot stand in a URL is percent-encoded (space, ``#``, control
characters, non-ASCII, a ``%`` that starts no escape): ``a b#c`` used to go out as
``GET /p/a b HTTP/1.1``, the rest of the URL after ``#`` lost."""

from __future__ import annotations

import re
from urllib.parse import unquote, urlsplit

import httpx
import polars as pl
from hypothesis import given, settings
from hypothesis import strategies as st

from postback_lab import build_plan, read_rules
from postback_lab.sending import send_sync
from tests.sending.test_wire import RawServer

URL_CHARS = re.compile(r"[A-Za-z0-9._~!$&'()*+,;=:/?@%-]*")


def events(**columns: list[str]) -> pl.DataFrame:
    n = len(next(iter(columns.values())))
    return pl.DataFrame(
        {
            "transaction_id": [f"t{i}" for i in range(n)],
            "status": ["approved"] * n,
            "occurred_at": ["2024-01-01"] * n,
            **columns,
        }
    )


def urls(url: str, **columns: list[str]) -> list[str]:
    rules = read_rules([{"name": "r", "url": url, "headers": {"X-Sub": "{raw:sub1}"}}])
    return build_plan(events(**columns), rules).frame["url"].to_list()


def test_raw_values_escape_only_what_cannot_stand_in_a_url():
    got = urls(
        "https://h.example/p/{raw:sub1}?q={raw:sub2}&x=1",
        sub1=["a b#c", "a=1&b=%41", "tab\there", "x/y?z", "[v6]"],
        sub2=["100% off é", "ok", "%zz %4", '"<>\\^`{|}', "%E2%9C%93"],
    )
    assert got == [
        "https://h.example/p/a%20b%23c?q=100%25%20off%20%C3%A9&x=1",
        "https://h.example/p/a=1&b=%41?q=ok&x=1",
        "https://h.example/p/tab%09here?q=%25zz%20%254&x=1",
        "https://h.example/p/x/y?z?q=%22%3C%3E%5C%5E%60%7B%7C%7D&x=1",
        "https://h.example/p/%5Bv6%5D?q=%E2%9C%93&x=1",
    ]


def test_raw_values_in_headers_stay_as_they_are():
    rules = read_rules(
        [{"name": "r", "url": "https://h.example/p", "headers": {"X": "{raw:sub1}"}}]
    )
    plan = build_plan(events(sub1=["a b#c"]), rules).frame
    assert plan["headers"].to_list() == ['{"X":"a b#c"}']


def test_the_request_line_carries_the_whole_raw_value(tmp_path):
    with RawServer() as server:
        rules = read_rules(
            [{"name": "r", "url": f"http://127.0.0.1:{server.port}/p/{{raw:sub1}}?n=1"}]
        )
        plan = build_plan(events(sub1=["a b#c"]), rules)
        result = send_sync(plan, tmp_path / "log.duckdb", progress=False)
    assert result.delivered == 1
    assert server.lines == [b"GET /p/a%20b%23c?n=1 HTTP/1.1"]


def test_dot_segments_are_escaped_so_no_client_resolves_them_away():
    got = urls("https://h.example/p/{raw:sub1}?n=1", sub1=[".", "..", "a/../b", ".a", "a."])
    assert got == [
        "https://h.example/p/%2E?n=1",
        "https://h.example/p/%2E%2E?n=1",
        "https://h.example/p/a/%2E%2E/b?n=1",
        "https://h.example/p/.a?n=1",
        "https://h.example/p/a.?n=1",
    ]
    assert [httpx.URL(u).raw_path for u in got] == [
        u.removeprefix("https://h.example").encode() for u in got
    ]


text = st.text(
    st.characters(codec="utf-8", exclude_categories=["Cs"], exclude_characters="\x00"),
    min_size=1,
    max_size=40,
)


@settings(max_examples=200, deadline=None)
@given(text)
def test_any_raw_value_stands_in_a_url_and_decodes_as_the_value_did(value):
    url = urls("https://h.example/p/{raw:sub1}", sub1=[value])[0]
    rendered = url.removeprefix("https://h.example/p/")
    assert URL_CHARS.fullmatch(rendered), rendered
    assert urlsplit(url).fragment == "" and urlsplit(url).netloc == "h.example"
    assert unquote(rendered) == unquote(value)
    # what httpx puts on the wire is the planned URL, byte for byte
    assert httpx.URL(url).raw_path == url.removeprefix("https://h.example").encode()
