"""Secrets on the send side: ``{env:}`` values are percent-encoded where they stand in a
URL, masked in whatever a partner echoes (also percent-encoded or JSON-escaped), and a
literal ``user:password@`` never reaches the log, the journal or an error message."""

from __future__ import annotations

import base64
import http.server
import json
import threading

import polars as pl
import pytest

from postback_lab import LogStore, build_plan, read_rules
from postback_lab.receiver import Receiver
from postback_lab.sending import ENGINES, Retry, send_sync

from .conftest import make_plan
from .test_crash_and_peers import httpbin_url  # noqa: F401  (fixture)

#: a secret with every character that could end or split a query value or a path segment
SECRET = "k#frag&x=1/2?é ü+%"


def _events() -> pl.DataFrame:
    return pl.DataFrame(
        {"transaction_id": ["t1"], "status": "approved", "occurred_at": "2024-01-01T00:00:00Z"}
    )


@pytest.mark.parametrize("engine", ENGINES)
def test_a_secret_is_percent_encoded_where_it_stands(engine, tmp_path, monkeypatch):
    monkeypatch.setenv("PBL_HASH_SECRET", SECRET)
    with Receiver() as rx:
        rules = read_rules(
            [{"name": "r", "url": rx.url + "/pb/{env:PBL_HASH_SECRET}?k={env:PBL_HASH_SECRET}&n=1"}]
        )
        result = send_sync(
            build_plan(_events(), rules), tmp_path / "log.duckdb", engine=engine, progress=False
        )
        got = rx.received()
    assert result.delivered == 1
    assert got[0].query == [("k", SECRET), ("n", "1")]  # nothing cut off after the '#'
    assert got[0].path == "/pb/k%23frag%26x%3D1%2F2%3F%C3%A9%20%C3%BC%2B%25"
    with LogStore(tmp_path / "log.duckdb") as s:
        url = s.attempts()["url"].item()
    assert url == rx.url + "/pb/{env:PBL_HASH_SECRET}?k={env:PBL_HASH_SECRET}&n=1"


def test_echoed_secrets_are_masked_in_every_form(tmp_path, httpbin_url, monkeypatch):  # noqa: F811
    """httpbin echoes the URL (percent-encoded), the query (decoded, JSON-escaped) and the
    headers: the log keeps none of them."""
    monkeypatch.setenv("PBL_HASH_SECRET", SECRET)
    rules = read_rules(
        [
            {
                "name": "r",
                "url": httpbin_url + "/anything?k={env:PBL_HASH_SECRET}",
                "headers": {"X-Key": "{env:PBL_HASH_SECRET}"},
            }
        ]
    )
    db = tmp_path / "log.duckdb"
    result = send_sync(build_plan(_events(), rules), db, progress=False)
    assert result.delivered == 1
    with LogStore(db) as s:
        body = s.attempts()["response_body"].item()
    echoed = json.loads(body + "}" * 0) if body.rstrip().endswith("}") else None
    assert echoed is None or echoed["args"]["k"] == "{env:PBL_HASH_SECRET}"
    for form in (SECRET, "k%23frag", "k#frag", "\\u00e9 \\u00fc"):
        assert form not in body, form
    assert body.count("{env:PBL_HASH_SECRET}") >= 2  # the url and the header at least


@pytest.mark.parametrize("engine", ENGINES)
def test_userinfo_is_sent_as_basic_auth_and_masked_everywhere(engine, tmp_path):
    db = tmp_path / "log.duckdb"
    with Receiver() as rx:
        url = rx.url.replace("http://", "http://admin:hunter22@") + "/p?x=1"
        dead = "http://admin:hunter22@127.0.0.1:1/q"
        result = send_sync(
            make_plan([url, dead]), db, engine=engine, retry=Retry.none(), progress=False
        )
        got = rx.received()
    assert result.delivered == 1 and result.failed == 1
    assert got[0].line == "GET /p?x=1 HTTP/1.1"
    assert got[0].headers["authorization"] == "Basic " + base64.b64encode(b"admin:hunter22").decode(
        "ascii"
    )
    with LogStore(db) as s:
        log = s.attempts().sort("transaction_id")
    assert log["url"].to_list() == [
        rx.url.replace("http://", "http://admin:***@") + "/p?x=1",
        "http://admin:***@127.0.0.1:1/q",
    ]
    assert "hunter22" not in str(log.rows())
    for path in tmp_path.rglob("*"):
        if path.is_file():
            assert b"hunter22" not in path.read_bytes(), path


@pytest.mark.parametrize("engine", ENGINES)
def test_error_messages_are_masked_on_every_path(engine, tmp_path, monkeypatch):
    """An invalid URL (before any connection), a refused connection: the error names the
    problem, never the secret."""
    monkeypatch.setenv("PBL_HASH_SECRET", "s3cret-value-42")
    plan = make_plan(
        [
            "http://127.0.0.1:99999/p?k={env:PBL_HASH_SECRET}",
            "http://127.0.0.1:1/p?k={env:PBL_HASH_SECRET}",
            "http://u:s3cret-value-42@127.0.0.1:1/p",
        ]
    )
    db = tmp_path / "log.duckdb"
    result = send_sync(plan, db, engine=engine, retry=Retry.none(), progress=False)
    assert result.failed == 3
    with LogStore(db) as s:
        log = s.attempts().sort("transaction_id")
    assert log["outcome"].to_list() == ["failed", "connection_error", "connection_error"]
    assert "out of range" in log["error"][0]
    assert "s3cret" not in str(log.rows())


class _EchoAuthAtTheCut(http.server.BaseHTTPRequestHandler):
    """A partner that echoes the Authorization header so that it straddles the 1 KiB the
    log keeps of an answer."""

    def do_GET(self) -> None:
        body = ("x" * (1024 - 7) + self.headers["Authorization"] + "y" * 200).encode()
        self.send_response(200)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *args: object) -> None:
        pass


@pytest.mark.parametrize("engine", ENGINES)
def test_a_secret_echoed_across_the_kib_cut_is_masked_before_the_cut(engine, tmp_path, monkeypatch):
    token = "tok-" + "s3cr3t" * 4
    monkeypatch.setenv("CRM_TOKEN", token)
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), _EchoAuthAtTheCut)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        url = f"http://127.0.0.1:{server.server_address[1]}/crm?t={{transaction_id}}"
        rules = read_rules(
            [{"name": "r", "url": url, "headers": {"Authorization": "{env:CRM_TOKEN}"}}]
        )
        db = tmp_path / "log.duckdb"
        result = send_sync(build_plan(_events(), rules), db, engine=engine, progress=False)
    finally:
        server.shutdown()
        server.server_close()
    assert result.delivered == 1
    with LogStore(db) as s:
        body = s.attempts()["response_body"].item()
    assert body == "x" * (1024 - 7) + "{env:CR"  # the placeholder is cut, not the secret
    assert token[:4] not in body
