"""Rules files that used to surprise: YAML 1.1 numbers, keys written twice, huge delays,
runaway Jinja arithmetic, macros touching the host, credentials in the URL."""

from __future__ import annotations

import pytest

from postback_lab import RuleValidationError, read_rules


def _problems(text: str) -> list[str]:
    with pytest.raises(RuleValidationError) as err:
        read_rules(text)
    return err.value.problems


def test_ids_are_read_as_written() -> None:
    rules = read_rules(
        """postbacks:
  - name: a
    offers: [001, 017, 12:30, 0x1F, 1.50]
    publishers: [010, 7]
    goals: [no, off, 0o17]
    url: https://h.example/p
"""
    )
    r = rules["a"]
    assert r.offers == ("001", "017", "12:30", "0x1F", "1.50")
    assert r.publishers == ("010", "7")
    assert r.goals == ("no", "off", "0o17")


def test_numbers_still_mean_numbers() -> None:
    r = read_rules("postbacks:\n  - {name: a, delay: 90, timeout: 1.5, url: 'https://h.example/'}")[
        "a"
    ]
    assert r.delay.total_seconds() == 90 and r.timeout == 1.5


def test_a_key_written_twice_is_an_error_naming_the_rule() -> None:
    assert _problems(
        """postbacks:
  - name: first
    url: https://h.example/a
  - name: second
    url: https://h.example/b
    fire_on: rejected
    url: https://h.example/c
"""
    ) == ["<rules>: rule 'second' (#2), field 'url': written twice (lines 5 and 7); keep one"]


def test_a_key_written_twice_inside_headers_success_or_sign_is_an_error() -> None:
    """`success: {status: [200], status: [500]}` must not make a 500 count as delivered:
    keys repeated inside a rule's mappings are errors naming the rule, field and lines."""
    assert _problems(
        """postbacks:
  - name: crm
    url: https://h.example/a
    success: {status: [200], status: [500]}
  - name: signed
    url: https://h.example/b
    headers:
      X-Key: one
      X-Key: two
    sign:
      secret: "{env:A}"
      secret: "{env:B}"
"""
    ) == [
        "<rules>: rule 'crm' (#1), field 'success.status': written twice (lines 4 and 4); keep one",
        "<rules>: rule 'signed' (#2), field 'headers.X-Key': written twice (lines 8 and 9); "
        "keep one",
        "<rules>: rule 'signed' (#2), field 'sign.secret': written twice (lines 11 and 12); "
        "keep one",
    ]


def test_top_level_key_written_twice() -> None:
    assert _problems("postbacks: []\npostbacks: []\n") == [
        "<rules>: top-level key 'postbacks' written twice (lines 1 and 2)"
    ]


@pytest.mark.parametrize("delay", ["99999999999d", "400d"])
def test_huge_delay_is_a_clear_error(delay: str) -> None:
    assert _problems(f"postbacks:\n  - {{name: a, delay: {delay}, url: 'https://h.example/'}}") == [
        f"<rules>: rule 'a' (#1), field 'delay': '{delay}' is longer than 365 days"
    ]


@pytest.mark.parametrize("expr", ["9**999999", "'x' * 10**7"])
def test_runaway_jinja_arithmetic_is_refused(expr: str) -> None:
    with pytest.raises(RuleValidationError) as err:
        read_rules(
            [
                {
                    "name": "a",
                    "method": "POST",
                    "url": "https://h.example/",
                    "body": f"{{{{ {expr} }}}}",
                }
            ]
        )
    (problem,) = err.value.problems
    assert problem.startswith("<rules>: rule 'a' (#1), field 'body': unsafe template:")


@pytest.mark.parametrize(
    "url",
    [
        "http://8.8.8.8{raw:sub1}",
        "http://8.8.8.8:{raw:sub1}/x",
        "https://partner.example{sub1}/p",
    ],
)
def test_a_macro_may_not_touch_the_host(url: str) -> None:
    (problem,) = _problems(f"postbacks:\n  - {{name: a, url: '{url}'}}")
    assert "a macro may not touch the host" in problem


def test_credentials_in_the_url_are_refused() -> None:
    (problem,) = _problems("postbacks:\n  - {name: a, url: 'http://admin:pass@h.example/p'}")
    assert "credentials in the URL (user:password@host)" in problem


def test_cake_tokens_without_a_dialect_are_an_error_not_a_fragment() -> None:
    (problem,) = _problems(
        "postbacks:\n  - {name: a, url: 'https://h.example/pb?cid=#s2#&a=#price#'}"
    )
    assert problem == (
        "<rules>: rule 'a' (#1), field 'url': #s2# is CAKE token syntax (everything after "
        "'#' would be a URL fragment, never sent): add 'dialect: cake' to translate it"
    )


def test_unknown_macros_come_with_every_other_problem_in_one_pass() -> None:
    with pytest.raises(RuleValidationError) as err:
        read_rules(
            [
                {"name": "a", "url": "https://h.example/?o={OID}&t={tid}", "fire_on": "sold"},
                {"name": "b", "url": "ftp://h.example/"},
            ],
            event_columns=["transaction_id", "offer_id", "status"],
        )
    assert err.value.problems == [
        "<rules>: rule 'a' (#1), field 'fire_on': 'sold' is not valid (valid: all, approved, "
        "pending, rejected)",
        "<rules>: rule 'a' (#1), field 'url': unknown macro {OID} (valid: offer_id, status, "
        "transaction_id)",
        "<rules>: rule 'a' (#1), field 'url': unknown macro {tid}: {tid} is a Keitaro macro: "
        "add 'dialect: keitaro' to translate it",
        "<rules>: rule 'b' (#2), field 'url': 'ftp://h.example/' is not an http(s) URL "
        "(starts with 'ftp'); write https://host/path?… with a literal host",
    ]
