"""Request signing (Standard Webhooks), verified by an independent implementation."""

from __future__ import annotations

import base64

import polars as pl
import pytest
from standardwebhooks import Webhook

from postback_lab import Receiver, RuleValidationError, build_plan, read_rules
from postback_lab.sending import Retry, send_sync
from postback_lab.sending._sign import sign

SECRET = "whsec_" + base64.b64encode(b"a very secret signing key!").decode()
EVENTS = pl.DataFrame(
    {"transaction_id": ["t1"], "status": ["approved"], "occurred_at": ["2026-11-01T00:00:00Z"]}
)


def test_signed_requests_verify_with_the_standardwebhooks_package(tmp_path, monkeypatch) -> None:
    monkeypatch.setenv("WEBHOOK_SECRET", SECRET)
    with Receiver() as rx:
        rules = read_rules(
            [
                {
                    "name": "post",
                    "method": "POST",
                    "url": rx.url + "/crm",
                    "body": '{"id": "{{ transaction_id }}"}',
                    "sign": {"secret": "{env:WEBHOOK_SECRET}"},
                },
                {
                    "name": "get",
                    "url": rx.url + "/pb?t={transaction_id}",
                    "sign": "{env:WEBHOOK_SECRET}",
                },
            ]
        )
        plan = build_plan(EVENTS, rules)
        result = send_sync(plan, tmp_path / "log.duckdb", retry=Retry.none(), progress=False)
        assert result.delivered == 2
        by_path = {r.path: r for r in rx.received()}
    ids = dict(plan.frame.select("rule", "dispatch_id").iter_rows())
    post, get = by_path["/crm"], by_path["/pb"]
    assert Webhook(SECRET).verify(post.body, post.headers) == {"id": "t1"}
    assert Webhook(SECRET).verify(get.body, get.headers, json_parse=False) is None
    assert post.headers["webhook-id"] == ids["post"] and get.headers["webhook-id"] == ids["get"]
    with pytest.raises(Exception, match="No matching signature"):
        Webhook("whsec_" + base64.b64encode(b"another key").decode()).verify(
            post.body, post.headers
        )


def test_signature_matches_a_hand_computation() -> None:
    headers = sign(SECRET, "msg_1", '{"a":1}', now=1_700_000_000)
    import hashlib
    import hmac

    key = base64.b64decode(SECRET.removeprefix("whsec_"))
    expected = base64.b64encode(
        hmac.new(key, b'msg_1.1700000000.{"a":1}', hashlib.sha256).digest()
    ).decode()
    assert headers == {
        "webhook-id": "msg_1",
        "webhook-timestamp": "1700000000",
        "webhook-signature": "v1," + expected,
    }


def test_the_secret_must_come_from_the_environment() -> None:
    with pytest.raises(
        RuleValidationError, match="the signing secret must come from the environment"
    ):
        read_rules([{"name": "r", "url": "https://h.example/", "sign": {"secret": SECRET}}])


def test_unset_signing_secret_stops_the_send(tmp_path, monkeypatch) -> None:
    monkeypatch.delenv("NOPE_SECRET", raising=False)
    rules = read_rules([{"name": "r", "url": "https://h.example/", "sign": "{env:NOPE_SECRET}"}])
    with pytest.raises(Exception, match="NOPE_SECRET are not set; the rule"):
        send_sync(build_plan(EVENTS, rules), tmp_path / "log.duckdb", progress=False)
