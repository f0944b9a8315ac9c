"""engine="local": buckets of whole transactions planned on a process pool give exactly the
one-process plan (bodies, ties and duplicates included) and its explain counts."""

from __future__ import annotations

import polars as pl
import pytest

import postback_lab as pbl
from postback_lab._errors import InputError
from postback_lab.cli import main
from postback_lab.scale import plan_bucket, plan_partitioned

from .conftest import raw_events, same_plan


def test_local_partitions_give_the_one_process_plan(tmp_path, events, rules):
    one = pbl.build_plan(events, rules)
    result = plan_partitioned(events, rules, tmp_path / "plan", partitions=5, workers=2)
    parts = sorted(p.name for p in (tmp_path / "plan").iterdir())
    assert parts == [f"part-{b:05d}.parquet" for b in range(5)]
    got = pbl.read_plan(tmp_path / "plan").frame
    assert same_plan(got, one.frame)
    assert result.rows == one.frame.height == 993
    assert result.explain().to_polars().equals(one.explain().to_polars())
    assert result.explain().to_polars()["duplicate"].sum() > 0
    assert result.worker_peak_mib is not None and result.worker_peak_mib > 0
    # bodies rendered per bucket are the one-process bodies
    posts = got.filter(pl.col("method") == "POST")
    assert posts.height == one.frame.filter(pl.col("method") == "POST").height > 0


def test_a_tie_keeps_the_first_row_of_the_input_even_when_a_bucket_arrives_shuffled(rules):
    events = pbl.read_events(raw_events(300))
    one = pbl.build_plan(events, rules).frame
    numbered = events.frame.with_row_index("__row_nr")
    plan, counts = plan_bucket(numbered.reverse(), rules)  # rows in the wrong order
    assert same_plan(plan, one)
    assert "second row" not in " ".join(one["url"].to_list())
    assert counts.group_by("reason").agg(pl.col("events").sum()).height > 3
    unsorted, _ = plan_bucket(events.frame.reverse(), rules)  # without row numbers
    assert not same_plan(unsorted, one)  # the tie goes the other way


def test_one_worker_and_an_empty_input_still_write_a_readable_plan(tmp_path, events, rules):
    serial = plan_partitioned(events, rules, tmp_path / "serial", partitions=3, workers=1)
    assert same_plan(pbl.read_plan(tmp_path / "serial").frame, pbl.build_plan(events, rules).frame)
    assert serial.parts == 3
    empty = pbl.Events(events.frame.head(0), events.quarantine)
    nothing = plan_partitioned(empty, rules, tmp_path / "empty", partitions=4, workers=1)
    assert nothing.rows == 0 and len(pbl.read_plan(tmp_path / "empty")) == 0
    assert "empty plan" in str(nothing)


def test_replanning_into_the_same_folder_replaces_the_parts(tmp_path, events, rules):
    plan_partitioned(events, rules, tmp_path / "p", partitions=6, workers=1)
    (tmp_path / "p" / "notes.txt").write_text("mine")
    plan_partitioned(events, rules, tmp_path / "p", partitions=2, workers=1)
    names = sorted(p.name for p in (tmp_path / "p").iterdir())
    assert names == ["notes.txt", "part-00000.parquet", "part-00001.parquet"]


def test_bad_arguments_are_input_errors(tmp_path, events, rules):
    with pytest.raises(InputError, match="partitions=0 must be a whole number >= 1"):
        plan_partitioned(events, rules, tmp_path / "x", partitions=0)
    with pytest.raises(InputError, match="engine='dask' is not one of 'local', 'spark'"):
        plan_partitioned(events, rules, tmp_path / "x", engine="dask")  # type: ignore[arg-type]
    (tmp_path / "file").write_text("")
    with pytest.raises(InputError, match="a partitioned plan is a folder"):
        plan_partitioned(events, rules, tmp_path / "file", partitions=2)


def test_cli_plan_engine_local_then_send_the_folder(tmp_path, capsys):
    from postback_lab import sample

    paths = sample.write(tmp_path / "s", 400)
    argv = ["plan", str(paths["events"]), "--rules", str(paths["rules"])]
    assert main([*argv, "-o", str(tmp_path / "one.parquet")]) == 0
    capsys.readouterr()
    code = main([*argv, "--engine", "local", "--partitions", "3", "-o", str(tmp_path / "plan")])
    out = capsys.readouterr().out
    assert code == 0
    assert "in 3 parts (engine local)" in out and f"plan written to {tmp_path / 'plan'}" in out
    assert same_plan(
        pbl.read_plan(tmp_path / "plan").frame, pbl.read_plan(tmp_path / "one.parquet").frame
    )
    assert main([*argv, "--partitions", "2"]) == 2
    assert "name a folder with -o" in capsys.readouterr().err
    code = main(
        [
            "send",
            str(tmp_path / "plan"),
            "--dry-run",
            "--db",
            str(tmp_path / "l.duckdb"),
            "--no-progress",
        ]
    )
    assert code == 0
    with pbl.LogStore(tmp_path / "l.duckdb") as log:
        assert log.count() == len(pbl.read_plan(tmp_path / "one.parquet")) == 247
