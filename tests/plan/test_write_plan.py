"""sink_plan: the plan streamed to Parquet, in one pass or in buckets of transactions read
from disk a slice at a time, is the plan build_plan makes, and explains itself alike."""

from __future__ import annotations

from datetime import timedelta

import polars as pl
import pytest

from postback_lab import EventsError, build_plan, read_events, read_plan, read_rules
from postback_lab.plan import _build, _spill, _write
from postback_lab.plan._explain import explain_rules
from postback_lab.plan._stream import sink_plan
from postback_lab.sample import generate, rules_yaml

EXTRA_RULES = """
  - name: Late approvals
    fire_on: approved
    delay: 10m
    url: https://late.example/pb?tid={transaction_id}&at={occurred_at}&p={payout}
  - name: Late approvals, never cancelled
    fire_on: approved
    delay: 10m
    cancel_on_change: false
    url: https://late.example/all?tid={transaction_id}&s={status}
"""


def crafted(n: int) -> pl.DataFrame:
    """Transactions whose status changes within minutes (rule 7) or repeats (the dedupe)."""
    base = generate(n, seed=7).filter(pl.col("status") == "pending").head(n)
    t = pl.col("timestamp").str.to_datetime("%Y-%m-%dT%H:%M:%SZ", time_zone="UTC")
    stamp = "%Y-%m-%dT%H:%M:%SZ"

    def at(seconds: int, status: str) -> pl.DataFrame:
        return base.with_columns(
            txn_id=pl.format("X{}", pl.col("txn_id")),
            status=pl.lit(status),
            timestamp=(t + timedelta(seconds=seconds)).dt.strftime(stamp),
        )

    return pl.concat(
        [
            at(0, "approved"),
            at(30, "approved"),  # a twin: only the earliest fires
            at(300, "rejected").with_columns(reason=pl.lit("vpn_proxy")),  # within 10m
            at(90_000, "pending").head(n // 2),  # long after: supersedes nothing
        ]
    )


@pytest.fixture(scope="module")
def source(tmp_path_factory):
    """Events in two Parquet files, rows shuffled so transactions straddle slices and
    files; the rules file."""
    folder = tmp_path_factory.mktemp("events")
    raw = pl.concat([generate(1_500, seed=3), crafted(300)], how="diagonal_relaxed")
    raw = raw.sample(fraction=1.0, shuffle=True, seed=11)
    half = raw.height // 2
    raw.head(half).write_parquet(folder / "part-0.parquet")
    raw.tail(raw.height - half).write_parquet(folder / "part-1.parquet")
    rules = folder.parent / "postbacks.yaml"
    rules.write_text(rules_yaml("https://h.example") + EXTRA_RULES, encoding="utf-8")
    return folder, rules, raw.height


WRITERS = {"pyarrow": 10_000, "polars sink": 1}  # SINK_CORES: which writer plan_writer picks


@pytest.mark.parametrize("writer", list(WRITERS))
@pytest.mark.parametrize("threads", [1, 3])
def test_one_pass_writes_exactly_the_plan(source, tmp_path, monkeypatch, writer, threads):
    """Whatever the writer and however many rules are planned at once: the same file."""
    folder, rules_path, _ = source
    monkeypatch.setenv("CRM_TOKEN", "x")
    monkeypatch.setattr(_write, "SINK_CORES", WRITERS[writer])
    monkeypatch.setattr(_build, "threads", lambda: threads)
    rules = read_rules(rules_path)
    plan = build_plan(str(folder), rules)
    written = sink_plan(str(folder), rules, tmp_path / "plan.parquet")
    assert written.buckets == 1
    assert read_plan(tmp_path / "plan.parquet").frame.equals(plan.frame)
    assert str(written) == str(plan)
    assert written.explain().to_polars().equals(plan.explain().to_polars())


@pytest.mark.parametrize("batch", [0, 40, 10**9])
def test_dispatch_ids_are_the_same_batched_or_per_rule(source, monkeypatch, batch):
    """Small rules get their dispatch ids a batch at a time (one DuckDB query for many
    rules): every id is still md5 of its own rule, transaction and status, in rule order."""
    folder, rules_path, _ = source
    monkeypatch.setenv("CRM_TOKEN", "x")
    monkeypatch.setattr(_build, "BATCH_IDS", 0)
    rules = read_rules(rules_path)
    each = build_plan(str(folder), rules).frame
    monkeypatch.setattr(_build, "BATCH_IDS", batch)
    batched = build_plan(str(folder), rules).frame
    assert each.height > 1_000 and each["rule"].n_unique() > 3
    assert batched.equals(each)
    assert batched["dispatch_id"].null_count() == 0
    assert batched["dispatch_id"].equals(_build.dispatch_ids(batched))


@pytest.mark.parametrize(("threads", "kind"), [(1, "PlanWriter"), (2, "SinkWriter")])
def test_two_cores_write_with_polars_sink_one_with_pyarrow(tmp_path, monkeypatch, threads, kind):
    """On 2 quiet cores the sink made a 2M-event plan 6.9 s instead of 8.1 s (1.74 cores
    busy instead of 1.57): it writes from two Polars threads on."""
    monkeypatch.setattr(pl, "thread_pool_size", lambda: threads)
    writer = _write.plan_writer(tmp_path / "p.parquet", {"a": pl.Int64()})
    writer.abort()
    assert type(writer).__name__ == kind
    assert list(tmp_path.iterdir()) == []


@pytest.mark.parametrize("writer", list(WRITERS))
def test_a_failure_while_planning_leaves_no_file(source, tmp_path, monkeypatch, writer):
    folder, rules_path, _ = source
    monkeypatch.setattr(_write, "SINK_CORES", WRITERS[writer])
    monkeypatch.setattr(_build, "threads", lambda: 3)
    real = _build._rule_frame

    def failing(rule, sel):
        if rule.name == "Partner B leads":
            raise RuntimeError("boom")
        return real(rule, sel)

    monkeypatch.setattr(_build, "_rule_frame", failing)
    with pytest.raises(RuntimeError, match="boom"):
        sink_plan(str(folder), read_rules(rules_path), tmp_path / "plan.parquet")
    assert list(tmp_path.iterdir()) == []


def test_buckets_give_the_one_pass_plan_and_counts(source, tmp_path, monkeypatch):
    folder, rules_path, rows = source
    rules = read_rules(rules_path)
    events = read_events(str(folder))
    plan = build_plan(events, rules)
    monkeypatch.setattr(_spill, "SLICE_ROWS", 700)  # each file read in several slices
    written = sink_plan(str(folder), rules, tmp_path / "plan.parquet", bucket_rows=1_000)
    assert written.buckets == -(-rows // 1_000) > 3
    got = read_plan(tmp_path / "plan.parquet").frame
    assert got.height == len(written) == plan.frame.height
    assert got.sort("dispatch_id").equals(plan.frame.sort("dispatch_id"))
    assert written.explain().to_polars().equals(plan.explain().to_polars())
    assert written.quarantine.height == events.quarantine.height
    counts = written.explain().to_polars().rows_by_key("rule", named=True, unique=True)
    # rule 7 and the dedupe looked across slices and files
    assert counts["Late approvals"]["superseded"] == 600  # both twins, rejected 5m later
    assert counts["Late approvals, never cancelled"]["superseded"] == 0
    assert counts["Late approvals, never cancelled"]["duplicate"] == 300
    assert str(written) == str(plan)


def test_counts_gathered_while_building_are_the_counts_of_explain(source, monkeypatch):
    folder, rules_path, _ = source
    rules = read_rules(rules_path)
    plan = build_plan(str(folder), rules)
    assert plan.events is not None
    slow = explain_rules(plan.events, rules, plan.frame, plan.body_errors)
    assert plan.explain().to_polars().equals(slow.to_polars())
    # a filtered plan counts what it holds, as before
    some = plan.filter(pl.col("rule") == "Late approvals")
    fired = some.explain().to_polars().rows_by_key("rule", named=True, unique=True)
    assert fired["Affili rejected fraud"]["fired"] == 0


def test_events_with_read_options_is_an_error_naming_them(tmp_path):
    """An Events value was read already: read options with it would be ignored."""
    events = read_events(generate(20, seed=1))
    rules = tmp_path / "postbacks.yaml"
    rules.write_text(rules_yaml("https://h.example"), encoding="utf-8")
    out = tmp_path / "plan.parquet"
    with pytest.raises(EventsError, match=r"read options \(timezone=, preset=\)"):
        sink_plan(events, rules, out, timezone="Not/AZone", preset="everflow")
    assert not out.exists()
