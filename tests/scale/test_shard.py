"""send --shard K/N: each host in exactly one shard (a stable hash), each shard its own
log; a central log's deliveries count as done, so changing N never re-sends."""

from __future__ import annotations

import polars as pl
import pytest

import postback_lab as pbl
from postback_lab._errors import InputError
from postback_lab.cli import main
from postback_lab.scale import host_shards, parse_shard, shard_plan


def test_parse_shard():
    assert parse_shard("1/4") == (1, 4) and parse_shard(" 4 / 4 ") == (4, 4)
    for bad in ("0/4", "5/4", "1/0", "a/b", "1-4", ""):
        with pytest.raises(InputError, match="write K/N with 1 <= K <= N"):
            parse_shard(bad)


def test_the_shard_of_a_host_is_stable_and_ignores_case():
    hosts = pl.Series(["a.example.com", "A.Example.COM", "b.example.com", "c.example.com:8080"])
    got = host_shards(hosts, 4).to_list()
    assert got[0] == got[1]
    assert got == [3, 3, 2, 4]  # md5 of the lower-cased host, mod 4, plus 1: fixed forever
    assert host_shards(hosts, 1).to_list() == [1, 1, 1, 1]


def _rules(tmp_path, receivers):
    lines = ["postbacks:"]
    for i, rx in enumerate(receivers):
        lines += [
            f"  - name: partner {i}",
            "    type: conversion",
            "    fire_on: all",
            f"    url: {rx.url}/p{i}?tid={{transaction_id}}&s={{status}}",
        ]
    path = tmp_path / "rules.yaml"
    path.write_text("\n".join(lines) + "\n")
    return path


def _events(tmp_path):
    rows = [
        f"T{i},conversion,{s},2026-11-0{1 + i % 5}T10:00:00Z"
        for i in range(40)
        for s in ("pending", "approved")
    ]
    path = tmp_path / "events.csv"
    path.write_text("transaction_id,event_type,status,occurred_at\n" + "\n".join(rows) + "\n")
    return path


def test_shards_split_the_hosts_and_the_central_log_stops_resends(tmp_path, capsys):
    receivers = [pbl.Receiver(host=f"127.0.0.{i + 1}").start() for i in range(4)]
    try:
        rules = _rules(tmp_path, receivers)
        assert (
            main(
                [
                    "plan",
                    str(_events(tmp_path)),
                    "--rules",
                    str(rules),
                    "-o",
                    str(tmp_path / "plan.parquet"),
                ]
            )
            == 0
        )
        plan = pbl.read_plan(tmp_path / "plan.parquet")
        assert len(plan) == 4 * 80

        shards = [shard_plan(plan, f"{k}/2") for k in (1, 2)]
        assert sum(len(s) for s in shards) == len(plan)
        assert set(shards[0].frame["host"]).isdisjoint(shards[1].frame["host"])

        for k in (1, 2):
            argv = [
                "send",
                str(tmp_path / "plan.parquet"),
                "--shard",
                f"{k}/2",
                "--db",
                str(tmp_path / f"shard{k}.duckdb"),
                "--ignore-due",
                "--no-progress",
            ]
            assert main(argv) == 0
        for rx in receivers:  # every host got all its postbacks, from one shard only
            assert len(rx.requests) == 80
        for k, shard in zip((1, 2), shards, strict=True):
            with pbl.LogStore(tmp_path / f"shard{k}.duckdb") as log:
                assert log.count() == len(shard)
                assert set(log.attempts()["host"]) == set(shard.frame["host"])
            assert (
                main(
                    [
                        "log",
                        "export",
                        "--db",
                        str(tmp_path / f"shard{k}.duckdb"),
                        "--to",
                        str(tmp_path / "central"),
                    ]
                )
                == 0
            )
        capsys.readouterr()

        # three shards now: every dispatch is already delivered in the central log
        for k in (1, 2, 3):
            argv = [
                "send",
                str(tmp_path / "plan.parquet"),
                "--shard",
                f"{k}/3",
                "--central",
                f"delta:{tmp_path / 'central'}",
                "--db",
                str(tmp_path / f"new{k}.duckdb"),
                "--ignore-due",
                "--no-progress",
            ]
            assert main(argv) == 0
        out = capsys.readouterr().out
        assert "already delivered in delta:" in out
        assert sum(len(rx.requests) for rx in receivers) == len(plan)  # nothing re-sent
    finally:
        for rx in receivers:
            rx.stop()


def test_send_refuses_a_bad_shard(tmp_path, capsys):
    assert main(["send", str(tmp_path / "plan.parquet"), "--shard", "3/2"]) == 2
    err = capsys.readouterr().err
    assert "no such plan file" in err or "--shard '3/2'" in err
