"""read_rules: every field, and a clear message for each kind of mistake."""

from __future__ import annotations

from datetime import timedelta

import pytest

from postback_lab import RuleValidationError, read_rules

GOOD = """
postbacks:
  - name: Affili approved sales
    type: conversion
    offers: all
    publishers: [7, 12]
    fire_on: approved
    rejection_reasons: null
    goals: [sale]
    delay: 2m
    method: GET
    url: https://affiliate-postback.com/?clickid={external_transaction_id}&payout={payout}
    headers: {Authorization: "Bearer {env:CRM_TOKEN}"}
    timeout: 10s
    enabled: true
  - name: crm
    method: post
    fire_on: all
    rejection_reasons: [vpn_proxy]
    delay: 1h30m
    url: https://crm.example/p/{raw:sub1}
    body: '{"id": "{{ transaction_id }}", "amount": {{ payout }}}'
"""


def test_every_field_is_parsed(write):
    rules = read_rules(write("postbacks.yaml", GOOD))
    a, b = rules
    assert a.name == "Affili approved sales"
    assert (a.type, a.offers, a.publishers, a.fire_on) == (
        "conversion",
        None,
        ("7", "12"),
        "approved",
    )
    assert a.goals == ("sale",) and a.rejection_reasons is None
    assert a.delay == timedelta(minutes=2) and a.timeout == 10.0 and a.enabled
    assert a.url.columns == ("external_transaction_id", "payout")
    assert [(k, t.text) for k, t in a.headers] == [("Authorization", "Bearer {env:CRM_TOKEN}")]
    assert b.method == "POST" and b.delay == timedelta(hours=1, minutes=30)
    assert b.rejection_reasons == ("vpn_proxy",)
    assert b.body_columns == ("payout", "transaction_id")
    assert b.columns == ("sub1", "payout", "transaction_id")
    assert rules["crm"] is b and rules.names == ["Affili approved sales", "crm"]


def test_list_of_dicts_and_replace():
    rules = read_rules([{"name": "x", "url": "https://h/?t={transaction_id}"}])
    assert rules[0].fire_on == "approved" and rules[0].type == "conversion"
    changed = rules.replace("x", fire_on="all", delay="5s")
    assert changed["x"].fire_on == "all" and changed["x"].delay == timedelta(seconds=5)
    assert rules["x"].fire_on == "approved"  # immutable


@pytest.mark.parametrize(
    ("rule", "message"),
    [
        (
            {"name": "r", "url": "https://h/", "typ": "click"},
            "field 'typ': unknown key (did you mean 'type'?)",
        ),
        (
            {"name": "r", "url": "https://h/", "fire_on": "aproved"},
            "field 'fire_on': 'aproved' is not valid (did you mean 'approved'?)",
        ),
        (
            {"name": "r", "url": "https://h/", "type": "sale"},
            "field 'type': 'sale' is not valid (valid: click, conversion, event, impression)",
        ),
        (
            {"name": "r", "url": "https://h/", "delay": "2 weeks"},
            "field 'delay': '2 weeks' is not a duration",
        ),
        (
            {"name": "r", "url": "ftp://h/x"},
            "field 'url': 'ftp://h/x' is not an http(s) URL (starts with 'ftp')",
        ),
        (
            {"name": "r", "url": "https://h/?p={payot}"},
            "field 'url': unknown macro {payot} (did you mean {payout}?)",
        ),
        ({"name": "r", "url": "https://h/?p={payout"}, "field 'url': stray '{' at character 14"),
        ({"name": "r", "url": "https://h/?p=}"}, "field 'url': stray '}' at character 14"),
        (
            {"name": "r", "url": "https://h/", "fire_on": "approved", "rejection_reasons": ["x"]},
            "field 'rejection_reasons': only applies with fire_on: rejected or all",
        ),
        (
            {"name": "r", "url": "https://h/", "method": "POST", "body": '{"a": {{ payout }'},
            "field 'body': invalid Jinja2 template at line 1",
        ),
        (
            {"name": "r", "url": "https://h/", "method": "POST", "body": '{"a": {{ payout }} x}'},
            "field 'body': not valid JSON after rendering",
        ),
        (
            {
                "name": "r",
                "url": "https://h/",
                "method": "POST",
                "body": "{{ payout.__class__.__mro__ }}",
            },
            "field 'body': unsafe template",
        ),
        (
            {"name": "r", "url": "https://h/", "body": "x"},
            "field 'body': a body needs method: POST",
        ),
        (
            {"name": "r", "url": "https://h/", "method": "PUT"},
            "field 'method': 'PUT' is not valid (valid: GET, POST)",
        ),
        ({"name": "r", "url": "https://h/", "timeout": "0s"}, "field 'timeout': '0s' must be more"),
        ({"name": "r"}, "field 'url': required"),
        ({"url": "https://h/"}, "rule #1, field 'name': required"),
    ],
)
def test_each_mistake_names_file_rule_and_field(write, rule, message):
    import yaml

    path = write("bad.yaml", yaml.safe_dump({"postbacks": [rule]}))
    with pytest.raises(RuleValidationError) as err:
        read_rules(path)
    assert message in str(err.value)
    assert str(err.value).startswith(f"{path}: rule ")


def test_all_problems_are_reported_together_with_duplicates(write):
    path = write(
        "bad.yaml",
        """
        postbacks:
          - {name: a, url: "https://h/", fire_on: nope}
          - {name: b, url: "https://h/", delay: soon}
          - {name: b, url: "https://h/"}
    """,
    )
    with pytest.raises(RuleValidationError) as err:
        read_rules(path)
    assert err.value.problems == [
        f"{path}: rule 'a' (#1), field 'fire_on': 'nope' is not valid "
        "(valid: all, approved, pending, rejected)",
        f"{path}: rule 'b' (#2), field 'delay': 'soon' is not a duration; write a number with "
        "s, m, h or d, like 30s or 2m",
        f"{path}: rule 'b' (#3), field 'name': duplicate name, already used by rule #2; "
        "names must be unique",
    ]


def test_invalid_yaml_and_missing_file(write, tmp_path):
    path = write("bad.yaml", "postbacks:\n  - name: [unclosed\n")
    with pytest.raises(RuleValidationError, match=r"invalid YAML at line \d+, column \d+"):
        read_rules(path)
    with pytest.raises(RuleValidationError, match="no such rules file"):
        read_rules(tmp_path / "missing.yaml")


@pytest.mark.parametrize(
    ("delay", "written"),
    [("1.5s", "1.5s"), (90, "90s"), ("2m", "2m"), ("1h30m", "90m"), ("1.5d", "36h"), (0, "0s")],
)
def test_to_dict_keeps_the_exact_delay(delay, written):
    rule = read_rules([{"name": "r", "url": "https://a.example/", "delay": delay}])["r"]
    assert rule.to_dict()["delay"] == written
    again = read_rules([rule.to_dict()])["r"]
    assert again.delay == rule.delay


def test_replace_keeps_fractional_delays_and_timeouts():
    rule = read_rules(
        [{"name": "r", "url": "https://a.example/", "delay": "1.5s", "timeout": "2.5s"}]
    )["r"]
    changed = rule.replace(method="GET")
    assert changed.delay.total_seconds() == 1.5 and changed.timeout == 2.5
