"""scale/_local and scale/_output directly: the output folder (old parts replaced, other
files kept, a file in the way refused), the worker count, bucketing by transaction (every
row once, a transaction in one bucket), and the plan statistics."""

from __future__ import annotations

from datetime import UTC, datetime

import polars as pl
import pytest

from postback_lab import InputError
from postback_lab.scale._bucket import BUCKET, ROW_NR
from postback_lab.scale._local import bucket_events, default_workers
from postback_lab.scale._output import part_name, plan_stats, prepare_output


def test_part_names_sort_in_bucket_order():
    assert part_name(0) == "part-00000.parquet"
    assert part_name(12) == "part-00012.parquet"
    assert sorted(part_name(b) for b in (10, 2, 1)) == [part_name(b) for b in (1, 2, 10)]


def test_prepare_output_removes_old_parts_only(tmp_path):
    out = tmp_path / "plan"
    out.mkdir()
    for name in ("part-00000.parquet", "part-00001-abc.parquet", "notes.txt", "part-1.parquet"):
        (out / name).write_text("x")
    assert prepare_output(out) == out
    assert sorted(p.name for p in out.iterdir()) == ["notes.txt", "part-1.parquet"]
    assert prepare_output(tmp_path / "new" / "deeper").is_dir()  # created, parents too


def test_prepare_output_refuses_a_file(tmp_path):
    (tmp_path / "plan.parquet").write_text("x")
    with pytest.raises(InputError) as caught:
        prepare_output(tmp_path / "plan.parquet")
    assert str(caught.value) == (
        f"{tmp_path / 'plan.parquet'}: a partitioned plan is a folder of Parquet parts, "
        "and this is a file; name a folder"
    )


def test_default_workers():
    assert default_workers(3) == 3
    assert default_workers(None) >= 1
    for bad in (0, -1, 1.5, True, "2"):
        with pytest.raises(InputError, match=r"must be a whole number >= 1"):
            default_workers(bad)  # type: ignore[arg-type]


def test_bucket_events_keeps_every_row_once_and_a_transaction_together(tmp_path):
    frame = pl.DataFrame(
        {
            "transaction_id": [f"T{i % 7}" for i in range(40)],
            "n": list(range(40)),
        }
    )
    bucket_events(frame, tmp_path / "b", 3)
    folders = sorted(p.name for p in (tmp_path / "b").iterdir())
    assert set(folders) <= {f"{BUCKET}={k}" for k in range(3)}
    back = pl.read_parquet(tmp_path / "b" / "**" / "*.parquet", hive_partitioning=True)
    assert sorted(back[ROW_NR].to_list()) == list(range(40))  # every row once, numbered
    assert sorted(back["n"].to_list()) == list(range(40))
    per_txn = back.group_by("transaction_id").agg(pl.col(BUCKET).n_unique().alias("k"))
    assert per_txn["k"].to_list() == [1] * 7


def test_plan_stats_per_rule_and_hosts():
    day = datetime(2026, 1, 1, tzinfo=UTC)
    plan = pl.LazyFrame(
        {
            "rule": ["a", "a", "b"],
            "host": ["h2", "h1", "h1"],
            "due_at": [day.replace(hour=3), day.replace(hour=1), day],
        }
    )
    per_rule, hosts = plan_stats(plan)
    assert hosts == 2
    assert per_rule.sort("rule").rows() == [
        ("a", 2, "h1", day.replace(hour=1), day.replace(hour=3)),
        ("b", 1, "h1", day, day),
    ]
