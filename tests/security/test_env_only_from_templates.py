"""``{env:NAME}`` is filled in only where a rule's own template has it, never inside
event data; JSON bodies cannot be rewritten by a value (issue: secrets and injection)."""

from __future__ import annotations

import json

import polars as pl
import pytest

from postback_lab import InputError, PlanError, Receiver, build_plan, read_plan, read_rules
from postback_lab.sending import Retry, send_sync

SECRET = "s3cr#t&v@lue"


def _events(**extra: list[str | None]) -> pl.DataFrame:
    return pl.DataFrame(
        {
            "transaction_id": ["t1"],
            "status": ["approved"],
            "occurred_at": ["2026-11-01T00:00:00Z"],
            **extra,
        }
    )


def test_env_in_event_data_goes_out_literally(tmp_path, monkeypatch) -> None:
    monkeypatch.setenv("CRM_TOKEN", SECRET)
    events = _events(sub1=["{env:CRM_TOKEN}"], sub2=['x"}, "payout": 1000000, "z": "y\nz'])
    with Receiver() as rx:
        rules = read_rules(
            [
                {
                    "name": "get",
                    "url": rx.url + "/pb?k={env:CRM_TOKEN}&raw={raw:sub1}",
                    "headers": {"X-Data": "{sub1}", "Authorization": "Bearer {env:CRM_TOKEN}"},
                },
                {
                    "name": "post",
                    "method": "POST",
                    "url": rx.url + "/crm",
                    "body": '{"id": "{{ sub1 }}", "note": "{{ sub2 }}", "key": "{env:CRM_TOKEN}"}',
                },
            ]
        )
        plan = build_plan(events, rules)
        plan.write_parquet(tmp_path / "plan.parquet")
        result = send_sync(
            read_plan(tmp_path / "plan.parquet"),
            tmp_path / "log.duckdb",
            retry=Retry.none(),
            progress=False,
        )
        assert result.delivered == 2
        (get,) = rx.received("/pb")
        (post,) = rx.received("/crm")
    # the template's secret is percent-encoded where it stands; the data stays literal
    assert get.query == [("k", SECRET), ("raw", "{env:CRM_TOKEN}")]
    assert get.headers["x-data"] == "{env:CRM_TOKEN}"
    assert get.headers["authorization"] == f"Bearer {SECRET}"
    body = json.loads(post.body)
    assert body == {
        "id": "{env:CRM_TOKEN}",
        "note": 'x"}, "payout": 1000000, "z": "y\nz',
        "key": SECRET,
    }


def test_plan_records_where_secrets_stand() -> None:
    rules = read_rules(
        [{"name": "r", "url": "https://h.example/p/{sub1}?k={env:K}", "headers": {"A": "x{env:K}"}}]
    )
    plan = build_plan(_events(sub1=["ab c"]), rules)
    row = plan.frame.row(0, named=True)
    assert row["url"] == "https://h.example/p/ab%20c?k={env:K}"
    assert json.loads(row["env_at"]) == [["url", 29, "K"], ["header:A", 1, "K"]]


def test_unset_variable_names_it_and_the_rule(tmp_path, monkeypatch) -> None:
    monkeypatch.delenv("NOPE_TOKEN", raising=False)
    rules = read_rules([{"name": "needs it", "url": "https://h.example/?k={env:NOPE_TOKEN}"}])
    # a value in the data that reads like a secret is not a secret the plan needs
    plan = build_plan(_events(sub1=["{env:ALSO_UNSET}"]), rules)
    with pytest.raises(InputError) as err:
        send_sync(plan, tmp_path / "log.duckdb", progress=False)
    assert str(err.value) == (
        "the environment variable(s) NOPE_TOKEN are not set; the rule(s) 'needs it' use "
        "them as {env:...} macros; set them and run again"
    )


def test_data_that_reads_like_a_secret_needs_no_variable(tmp_path) -> None:
    with Receiver() as rx:
        rules = read_rules([{"name": "r", "url": rx.url + "/pb?c={raw:sub1}"}])
        plan = build_plan(_events(sub1=["{env:UNSET_XYZ}"]), rules)
        result = send_sync(plan, tmp_path / "log.duckdb", retry=Retry.none(), progress=False)
        assert result.delivered == 1
        assert rx.received()[0].query == [("c", "{env:UNSET_XYZ}")]


def test_old_plan_file_without_secret_positions_is_refused(tmp_path) -> None:
    rules = read_rules([{"name": "r", "url": "https://h.example/?k={env:K}"}])
    plan = build_plan(_events(), rules)
    plan.frame.drop("env_at").write_parquet(tmp_path / "old.parquet")
    with pytest.raises(PlanError, match=r"older postback_lab.*build the plan again"):
        read_plan(tmp_path / "old.parquet")


@pytest.mark.parametrize("value", ['quote " inside', "new\nline", "back\\slash", "{{ x }}"])
def test_json_body_values_are_escaped_and_still_fire(value: str) -> None:
    rules = read_rules(
        [
            {
                "name": "p",
                "method": "POST",
                "url": "https://h.example/c",
                "body": '{"v": "{{ sub1 }}", "n": {{ payout }}}',
            }
        ]
    )
    plan = build_plan(_events(sub1=[value], payout=["12.50"]), rules)
    assert len(plan) == 1
    assert json.loads(plan.frame["body"][0]) == {"v": value, "n": 12.5}


def test_tojson_is_not_escaped_twice() -> None:
    rules = read_rules(
        [
            {
                "name": "p",
                "method": "POST",
                "url": "https://h.example/c",
                "body": '{"v": {{ sub1 | tojson }}}',
            }
        ]
    )
    plan = build_plan(_events(sub1=['a"b']), rules)
    assert json.loads(plan.frame["body"][0]) == {"v": 'a"b'}


def test_a_url_whose_host_is_not_the_plans_is_refused(tmp_path) -> None:
    with Receiver() as rx:
        plan = build_plan(_events(), read_rules([{"name": "r", "url": rx.url + "/pb"}]))
        # a plan frame edited by hand: the allowlist checks the host column
        tampered = plan.frame.with_columns(host=pl.lit("partner.example"))
        result = send_sync(
            tampered,
            tmp_path / "log.duckdb",
            retry=Retry.none(),
            progress=False,
            allow_hosts=["partner.example"],
        )
        assert result.failed == 1 and rx.received() == []
        assert result.to_polars()["error"].to_list() == [
            f"refused: the URL's host '{rx.url.split('//')[1]}' is not the plan's host "
            "'partner.example'"
        ]
