"""engine="spark" in local mode: the same per-bucket planning under
groupBy(bucket).applyInArrow gives exactly the one-process plan and explain counts."""

from __future__ import annotations

import pytest

import postback_lab as pbl
from postback_lab.cli import main
from postback_lab.scale import plan_partitioned

from .conftest import PANDAS_WARNING, raw_events, same_plan

pytestmark = pytest.mark.filterwarnings(PANDAS_WARNING)


@pytest.fixture
def event_files(tmp_path):
    """The events in canonical columns, in two Parquet files (ties inside each)."""
    frame = pbl.read_events(raw_events()).frame
    half = frame.height // 2
    paths = [tmp_path / "events-1.parquet", tmp_path / "events-2.parquet"]
    frame.head(half).write_parquet(paths[0])
    frame.slice(half).write_parquet(paths[1])
    return paths


def test_spark_plan_is_the_one_process_plan(spark, tmp_path, event_files, rules):
    one = pbl.build_plan(pbl.read_events(event_files), rules)
    result = plan_partitioned(
        [str(p) for p in event_files],
        rules,
        str(tmp_path / "plan"),
        engine="spark",
        partitions=6,
        spark=spark,
    )
    got = pbl.read_plan(tmp_path / "plan").frame
    assert same_plan(got, one.frame)
    assert result.rows == one.frame.height == 993
    assert result.explain().to_polars().equals(one.explain().to_polars())
    assert result.by_rule()["rule"].to_list() == [r.name for r in rules]
    assert result.hosts == 1 and "(engine spark)" in result.summary()


def test_cli_plan_engine_spark_uses_the_active_session(spark, tmp_path, event_files, capsys):
    from postback_lab import sample

    rules = tmp_path / "rules.yaml"
    rules.write_text(sample.rules_yaml("http://127.0.0.1:8765"))
    files = [str(p) for p in event_files]
    code = main(
        [
            "plan",
            *files,
            "--rules",
            str(rules),
            "--engine",
            "spark",
            "--partitions",
            "3",
            "-o",
            str(tmp_path / "plan"),
            "--explain",
        ]
    )
    out = capsys.readouterr().out
    assert code == 0, out
    assert "993 postbacks to fire from 4 rules" in out and "excluded:" in out
    one = pbl.build_plan(pbl.read_events(event_files), pbl.read_rules(rules))
    assert same_plan(pbl.read_plan(tmp_path / "plan").frame, one.frame)


def test_spark_refuses_as_plan_does(spark, tmp_path, capsys):
    """A file whose every row is quarantined, a macro no column of the events has: the
    errors the default engine gives (exit 2); events Spark cannot read as Parquet are
    refused naming the file."""
    import polars as pl

    from postback_lab import sample

    rules = tmp_path / "rules.yaml"
    rules.write_text(sample.rules_yaml("http://127.0.0.1:8765"))
    good, bad = tmp_path / "good.parquet", tmp_path / "bad.parquet"
    sample.generate(40).write_parquet(good)  # export headers (txn_id …), read as plan does
    bogus = sample.generate(30).filter(pl.col("type") == "conversion")
    bogus.with_columns(pl.lit("bogus").alias("status")).write_parquet(bad)
    said = []
    for engine in ([], ["--engine", "spark", "-o", str(tmp_path / "plan")]):
        assert main(["plan", str(good), str(bad), "--rules", str(rules), *engine]) == 2
        said.append(capsys.readouterr().err)
    assert said[0] == said[1]
    assert f"{bad}: every row (58) was quarantined, so nothing was read" in said[1]
    typo = tmp_path / "typo.yaml"  # a macro no column has: the rules error, before planning
    typo.write_text(sample.rules_yaml("http://127.0.0.1:8765").replace("{sub1}", "{sub_1}"))
    said = []
    for engine in ([], ["--engine", "spark", "-o", str(tmp_path / "plan")]):
        assert main(["plan", str(good), "--rules", str(typo), *engine]) == 2
        said.append(capsys.readouterr().err)
    assert said[0] == said[1] and "unknown macro {sub_1}" in said[1]
    csv = tmp_path / "events.csv"
    sample.generate(5).write_csv(csv)
    spark_plan = ["--engine", "spark", "-o", str(tmp_path / "plan")]
    assert main(["plan", str(csv), "--rules", str(rules), *spark_plan]) == 2
    assert capsys.readouterr().err == (
        f"postback-lab: error: {csv}: --engine spark reads Parquet events (paths or URIs); "
        "plan it without --engine or with --engine local, or write it as Parquet first\n"
    )
