"""A URL's ``user:password@`` goes out as an ``Authorization: Basic`` header; a partner that
echoes that header back (in its body or its headers, as it is, percent-encoded or
JSON-escaped) leaves neither the base64 credential nor the password in the log."""

from __future__ import annotations

import base64
import json
import urllib.parse

import pytest

from postback_lab import LogStore
from postback_lab.receiver import Receiver
from postback_lab.sending import ENGINES, Retry, send_sync
from postback_lab.sending._guard import basic_credentials, mask

from .conftest import make_plan

TOKEN = base64.b64encode(b"admin:hunter22/?").decode("ascii")  # YWRtaW46aHVudGVyMjIvPw==


@pytest.mark.parametrize("engine", ENGINES)
def test_an_echoed_basic_credential_is_masked_in_body_and_headers(engine, tmp_path):
    db = tmp_path / "log.duckdb"
    with Receiver() as rx:
        rx.set_script("/echo", ["echo"])
        url = rx.url.replace("http://", "http://admin:hunter22%2F%3F@") + "/echo?x=1"
        result = send_sync(make_plan([url]), db, engine=engine, retry=Retry.none(), progress=False)
        sent = rx.received()[0].headers["authorization"]
    assert sent == f"Basic {TOKEN}" and result.delivered == 1
    with LogStore(db) as s:
        body, headers = s.sql("SELECT response_body, response_headers FROM postback_log").row(0)
    assert "\nauthorization: Basic ***\n" in body
    assert "\nX-Echo-Authorization: Basic ***" in headers
    for kept in (body, headers):
        assert "YWRtaW4" not in kept and "hunter22" not in kept
    for path in tmp_path.rglob("*"):
        if path.is_file():
            assert b"YWRtaW4" not in path.read_bytes(), path


def test_every_echoed_form_of_the_credential_is_masked():
    hidden = basic_credentials({"Authorization": f"Basic {TOKEN}"})
    assert hidden == (TOKEN, "hunter22/?")
    echoed = (
        f"q={urllib.parse.quote(TOKEN, safe='')} j={json.dumps(TOKEN)} "
        f"p={urllib.parse.quote('hunter22/?', safe='')} raw={TOKEN}"
    )
    assert mask(echoed, {}, hidden) == 'q=*** j="***" p=*** raw=***'
    assert basic_credentials({"authorization": "Bearer x", "X-Other": "Basic abc"}) == ()
