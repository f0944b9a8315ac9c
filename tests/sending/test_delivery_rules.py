"""Per-rule ``success:`` (what counts as delivered), over real sockets."""

from __future__ import annotations

import polars as pl
import pytest

from postback_lab import LogStore, RuleValidationError, build_plan, read_rules
from postback_lab.receiver import Receiver
from postback_lab.sending import Retry, send_sync

FAST = Retry(delays=(0.01, 0.01, 0.01), jitter=0.0)


def _events(n: int = 1) -> pl.DataFrame:
    return pl.DataFrame(
        {
            "transaction_id": [f"t{i}" for i in range(n)],
            "status": "approved",
            "occurred_at": "2024-01-01T00:00:00Z",
            "payout": [1.5] * n,
        }
    )


def _send(rule: dict, db, **kw):
    plan = build_plan(_events(), read_rules([{"name": "r", **rule}]))
    return plan, send_sync(plan, db, progress=False, **kw)


def _log(db) -> list[tuple]:
    with LogStore(db) as s:
        return s.attempts().select("attempt", "status_code", "outcome", "error").rows()


def test_a_status_outside_success_is_failed_with_the_reason_and_retried(tmp_path):
    db = tmp_path / "log.duckdb"
    with Receiver() as rx:
        rx.set_script("/p", ["200", "204"])
        plan, result = _send({"url": rx.url + "/p", "success": {"status": [204]}}, db, retry=FAST)
    assert plan.frame["success"].to_list() == ['{"status": [204], "body_matches": null}']
    assert _log(db) == [
        (1, 200, "failed", "HTTP 200 is not a success for this rule (success.status: 204)"),
        (2, 204, "delivered", None),
    ]
    assert result.delivered == 1


def test_a_listed_redirect_counts_as_delivered(tmp_path):
    db = tmp_path / "log.duckdb"
    with Receiver() as rx:
        rx.set_script("/p", ["308"])
        _, result = _send({"url": rx.url + "/p", "success": {"status": [200, 308]}}, db)
    assert _log(db) == [(1, 308, "delivered", None)]
    assert result.delivered == 1 and rx.received("/redirected") == []


def test_body_matches_reads_the_answer(tmp_path):
    """The receiver answers 200 with 'OK': a rule expecting 'accepted' (like TUNE answering
    200 while rejecting) fails every try of the schedule; one expecting OK delivers."""
    with Receiver() as rx:
        _, bad = _send(
            {"url": rx.url + "/p", "success": {"body_matches": "accepted"}},
            tmp_path / "bad.duckdb",
            retry=FAST,
        )
        _, good = _send(
            {"url": rx.url + "/q", "success": {"status": 200, "body_matches": "^OK$"}},
            tmp_path / "good.duckdb",
            retry=FAST,
        )
    reason = "HTTP 200, but the answer does not match success.body_matches 'accepted'"
    assert _log(tmp_path / "bad.duckdb") == [(i, 200, "failed", reason) for i in (1, 2, 3, 4)]
    assert bad.failed == 1 and good.delivered == 1
    assert _log(tmp_path / "good.duckdb") == [(1, 200, "delivered", None)]


def test_a_5xx_failing_success_follows_the_usual_rules(tmp_path):
    db = tmp_path / "log.duckdb"
    with Receiver() as rx:
        rx.set_script("/p", ["404"])
        _send({"url": rx.url + "/p", "success": {"body_matches": "x"}}, db, retry=FAST)
    assert [r[:3] for r in _log(db)] == [(1, 404, "failed")]  # a 404 stays final


@pytest.mark.parametrize(
    ("success", "message"),
    [
        ({"status": [200, "ok"]}, "field 'success.status': expected HTTP status codes"),
        ({"status": 999}, "field 'success.status': expected HTTP status codes"),
        ({"body_matches": "(unclosed"}, "field 'success.body_matches': not a valid regular"),
        ({"body": "x"}, "field 'success.body': unknown key (valid: status, body_matches)"),
        ("200", "field 'success': expected a mapping with status and/or body_matches"),
    ],
)
def test_success_is_validated_naming_the_rule_and_field(success, message):
    with pytest.raises(RuleValidationError) as err:
        read_rules([{"name": "r", "url": "https://a.example/", "success": success}])
    assert "rule 'r' (#1), " + message in str(err.value)
