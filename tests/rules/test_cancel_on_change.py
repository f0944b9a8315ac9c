"""The ``cancel_on_change`` key: a boolean, true unless a rule opts out of firing rule 7."""

from __future__ import annotations

import pytest

from postback_lab import RuleValidationError, read_rules


def test_default_is_true_and_false_round_trips(write):
    rules = read_rules(
        write(
            "r.yaml",
            """
            postbacks:
              - name: wait
                delay: 10m
                url: https://a.example/
              - name: always
                delay: 10m
                cancel_on_change: false
                url: https://a.example/
            """,
        )
    )
    assert rules["wait"].cancel_on_change is True
    assert rules["always"].cancel_on_change is False
    assert "cancel_on_change" not in rules["wait"].to_dict()
    assert rules["always"].to_dict()["cancel_on_change"] is False
    assert read_rules([rules["always"].to_dict()])["always"].cancel_on_change is False
    assert rules.replace("wait", cancel_on_change=False)["wait"].cancel_on_change is False


@pytest.mark.parametrize("value", ["no", "false", 0, "yes"])
def test_must_be_a_boolean(value):
    with pytest.raises(RuleValidationError) as err:
        read_rules([{"name": "r", "url": "https://a.example/", "cancel_on_change": value}])
    assert err.value.problems == [
        f"<rules>: rule 'r' (#1), field 'cancel_on_change': expected true or false, got {value!r}"
    ]


def test_a_misspelt_key_is_named(write):
    with pytest.raises(RuleValidationError, match="did you mean 'cancel_on_change'"):
        read_rules([{"name": "r", "url": "https://a.example/", "cancel_on_changes": False}])
