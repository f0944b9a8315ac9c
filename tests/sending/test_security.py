"""Secrets never leak; allowlist and --deny-private guard outbound traffic."""

from __future__ import annotations

import subprocess
import sys

import polars as pl
import pytest

from postback_lab import InputError, LogStore, build_plan, read_rules
from postback_lab.sending import Retry, send_sync
from postback_lab.sending._guard import private_reason

from .conftest import make_plan
from .test_crash_and_peers import httpbin_url  # noqa: F401  (fixture)

SECRET = "tok-3f9a7c21-super-secret"


def test_secrets_never_written_anywhere(tmp_path, httpbin_url, monkeypatch, capsys):  # noqa: F811
    monkeypatch.setenv("PBL_SECRET", SECRET)
    events = pl.DataFrame(
        {
            "transaction_id": ["t1", "t2"],
            "status": "approved",
            "occurred_at": "2024-01-01T00:00:00Z",
            "payout": [1.5, 2.0],
        }
    )
    rules = read_rules(
        [
            {
                "name": "get",
                "url": httpbin_url + "/anything/{transaction_id}?key={env:PBL_SECRET}",
                "headers": {"Authorization": "Bearer {env:PBL_SECRET}"},
            },
            {
                "name": "post",
                "method": "POST",
                "url": httpbin_url + "/anything",
                "headers": {"X-Api-Key": "{env:PBL_SECRET}"},
                "body": '{"id": "{{ transaction_id }}", "k": "{env:PBL_SECRET}"}',
            },
            {"name": "bad", "url": "http://127.0.0.1:1/?k={env:PBL_SECRET}"},
        ]
    )
    plan = build_plan(events, rules)
    plan.write_parquet(tmp_path / "plan.parquet")
    db = tmp_path / "log.duckdb"
    result = send_sync(plan, db, progress=True, retry=Retry.none())
    assert result.delivered == 4 and result.failed == 2
    texts = [
        str(plan),
        plan._repr_html_(),
        str(result),
        result._repr_html_(),
        str(plan.explain()),
        *capsys.readouterr(),
    ]
    with LogStore(db) as s:
        texts.append(str(s.attempts().rows()))
        assert "{env:PBL_SECRET}" in s.attempts()["response_body"].str.join("")[0]
    for path in tmp_path.rglob("*"):
        if path.is_file():
            assert SECRET.encode() not in path.read_bytes(), path
    for text in texts:
        assert SECRET not in text


def test_allowlist_refuses_other_hosts(tmp_path):
    plan = make_plan(["http://127.0.0.1:9/a", "http://evil.example/b"])
    with pytest.raises(InputError, match=r"hosts not in the allowlist: evil\.example"):
        send_sync(plan, tmp_path / "log.duckdb", allow_hosts=["127.0.0.1:*"], progress=False)


@pytest.mark.parametrize(
    "host",
    [
        "127.0.0.1:8080",
        "localhost",
        "10.0.0.8",
        "192.168.1.1:80",
        "169.254.169.254",
        "[::1]:443",
        "0.0.0.0",
    ],
)
def test_private_addresses_are_blocked(host):
    import asyncio

    assert "blocked by --deny-private" in asyncio.run(private_reason(host))


def test_public_addresses_pass():
    import asyncio

    assert asyncio.run(private_reason("93.184.215.14:443")) is None


def test_deny_private_fails_unsent(receiver, tmp_path):
    result = send_sync(
        make_plan([f"{receiver.url}/p"]), tmp_path / "log.duckdb", deny_private=True, progress=False
    )
    assert receiver.received() == [] and result.failed == 1
    with LogStore(tmp_path / "log.duckdb") as s:
        assert s.attempts()["error"][0].startswith("blocked by --deny-private: 127.0.0.1")


def test_jinja_sandbox_blocks_escapes():
    from postback_lab import RuleValidationError

    for body in (
        "{{ ''.__class__.__mro__[1].__subclasses__() }}",
        "{{ cycler.__init__.__globals__ }}",
        "{{ transaction_id.__class__ }}",
    ):
        with pytest.raises(RuleValidationError, match="unsafe template"):
            read_rules([{"name": "x", "method": "POST", "url": "https://h.example/", "body": body}])


def test_cli_flags(tmp_path):
    make_plan(["http://evil.example/b"]).write_parquet(tmp_path / "p.parquet")
    out = subprocess.run(
        [
            sys.executable,
            "-m",
            "postback_lab.cli",
            "send",
            str(tmp_path / "p.parquet"),
            "--db",
            str(tmp_path / "l.duckdb"),
            "--allow-host",
            "*.partner.com",
        ],
        capture_output=True,
        text=True,
    )
    assert out.returncode == 2
    assert out.stderr.startswith("postback-lab: error: hosts not in the allowlist: evil.example")
