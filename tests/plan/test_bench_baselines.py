"""The hand-written plan scripts the plan benchmark compares against must write exactly
our plan (same columns, rows, URLs and ids), or the ratios it prints mean nothing."""

from __future__ import annotations

import polars as pl

from benchmarks import _duckdb_plan, _polars_plan
from benchmarks._plan_steps import write_rules
from postback_lab import build_plan, read_rules
from postback_lab.events import read_events
from postback_lab.sample import generate


def test_the_baselines_write_our_plan(tmp_path):
    events = tmp_path / "events.parquet"
    read_events(generate(3_000, seed=1)).frame.write_parquet(events)
    rules = write_rules(tmp_path / "postbacks.yaml", 12)
    ours = build_plan(read_events(events), read_rules(rules)).frame
    assert ours.height > 1_000
    for script, ordered in ((_polars_plan, True), (_duckdb_plan, False)):
        out = tmp_path / f"{script.__name__}.parquet"
        assert script.main(str(events), str(rules), str(out)) == ours.height
        theirs = pl.read_parquet(out)
        assert theirs.columns == ours.columns, script.__name__
        theirs = theirs.cast(ours.schema)  # type: ignore[arg-type]
        a, b = (
            (ours, theirs)
            if ordered
            else (ours.sort("rule", "dispatch_id"), theirs.sort("rule", "dispatch_id"))
        )
        assert a.equals(b), script.__name__
