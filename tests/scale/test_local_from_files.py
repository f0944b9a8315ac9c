"""engine="local" on Parquet files: the pool reads the files a slice at a time straight
into the buckets, the driver never holds the events, and the plan, its explain counts,
the quarantine and the notes are those of one read and one-process planning."""

from __future__ import annotations

import polars as pl
import pytest

import postback_lab as pbl
from postback_lab.cli import main
from postback_lab.plan import _spill
from postback_lab.scale import _engines, _local, plan_partitioned

from .conftest import raw_events, same_plan


@pytest.fixture
def files(tmp_path) -> list[str]:
    """Two Parquet exports (ties and duplicates across the two), with rows to quarantine:
    a bad timestamp, an unknown status (twice, one in each file) and a NUL byte."""
    raw = raw_events()
    bad = raw.head(3).with_columns(
        pl.Series("timestamp", ["yesterday", raw["timestamp"][1], raw["timestamp"][2]]),
        pl.Series("status", ["approved", "frobbed", "approved"]),
        pl.Series("txn_id", ["Tbad1", "Tbad2", "T\x00nul"]),
    )
    first = pl.concat([raw.head(1_000), bad])
    second = pl.concat([raw.slice(1_000), bad.slice(1, 1)])
    paths = [str(tmp_path / "ev-1.parquet"), str(tmp_path / "ev-2.parquet")]
    first.write_parquet(paths[0], row_group_size=256)
    second.write_parquet(paths[1], row_group_size=256)
    return paths


def test_files_planned_by_the_pool_give_the_one_process_plan(tmp_path, files, rules, monkeypatch):
    events = pbl.read_events(files)
    one = pbl.build_plan(events, rules)

    # the driver cannot read events: only the spawned workers can (they import afresh)
    def refuse(*_a, **_k):
        raise AssertionError("the driver read the events")

    monkeypatch.setattr(_spill, "read_events", refuse)
    monkeypatch.setattr(_engines, "read_events", refuse)
    result = plan_partitioned(files, rules, tmp_path / "plan", partitions=3, workers=2)
    got = pbl.read_plan(tmp_path / "plan").frame
    assert same_plan(got, one.frame)
    assert result.rows == one.frame.height == 993
    assert result.explain().to_polars().equals(one.explain().to_polars())
    assert result.explain().to_polars()["duplicate"].sum() > 0
    assert result.quarantine.equals(events.quarantine)
    assert result.quarantine.select("line", "reason").rows() == [
        (1001, "bad timestamp 'yesterday'"),
        (1002, "unknown status 'frobbed' (valid: approved, rejected, pending)"),
        (1003, "NUL byte in transaction_id"),
        (3198, "unknown status 'frobbed' (valid: approved, rejected, pending)"),
    ]
    assert result.notes == events.notes
    assert any("unknown status 'frobbed' on 2 rows" in n for n in result.notes)


def test_the_driver_holds_a_slice_at_most_and_a_worker_one_bucket(
    tmp_path, files, rules, monkeypatch
):
    """One worker runs in this process: every frame read is at most one slice, every
    bucket planned about a third of the events, and together they are every good row."""
    events = pbl.read_events(files)
    read, planned = [], []
    real_read, real_bucket = _spill.read_events, _spill.read_bucket

    def reading(lazy, **options):
        got = real_read(lazy, **options)
        read.append(got.frame.height + got.quarantine.height)
        return got

    def bucket(paths):
        frame = real_bucket(paths)
        planned.append(frame.height)
        return frame

    monkeypatch.setattr(_spill, "read_events", reading)
    monkeypatch.setattr(_local, "read_bucket", bucket)
    monkeypatch.setattr(_spill, "SLICE_ROWS", 300)
    result = plan_partitioned(files, rules, tmp_path / "plan", partitions=3, workers=1)
    assert same_plan(pbl.read_plan(tmp_path / "plan").frame, pbl.build_plan(events, rules).frame)
    assert max(read) == 300 and sum(read) == events.frame.height + events.quarantine.height
    sizes = [pl.scan_parquet(f).select(pl.len()).collect().item() for f in files]
    assert len(read) == sum(-(-n // 300) for n in sizes) > 4
    assert len(planned) == 3 and sum(planned) == events.frame.height
    assert max(planned) < events.frame.height / 2
    assert result.quarantine.equals(events.quarantine)


def test_cli_engine_local_reads_parquet_in_the_pool_and_says_what_it_quarantined(
    tmp_path, files, capsys
):
    from postback_lab import sample

    rules = tmp_path / "rules.yaml"
    rules.write_text(sample.rules_yaml("http://127.0.0.1:8765"))
    argv = ["plan", *files[:1], "--rules", str(rules)]
    assert main([*argv, "-o", str(tmp_path / "one.parquet")]) == 0
    one_err = capsys.readouterr().err
    code = main([*argv, "--engine", "local", "--partitions", "2", "-o", str(tmp_path / "p")])
    captured = capsys.readouterr()
    assert code == 0, captured.err
    assert same_plan(
        pbl.read_plan(tmp_path / "p").frame, pbl.read_plan(tmp_path / "one.parquet").frame
    )
    warning = "warning: 3 event rows quarantined (first: "
    assert warning in one_err and warning in captured.err
    assert "line 1001: bad timestamp 'yesterday')" in captured.err
    notes = [line for line in captured.err.splitlines() if line.startswith("note: ")]
    assert notes == [line for line in one_err.splitlines() if line.startswith("note: ")]
    # an unknown macro is named before any event is read, as for the one-process plan
    rules.write_text(rules.read_text().replace("{sub1}", "{nonesuch}", 1))
    assert main([*argv, "--engine", "local", "-o", str(tmp_path / "q")]) == 2
    assert "nonesuch" in capsys.readouterr().err
