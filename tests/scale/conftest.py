"""Events with duplicates and exact-time ties, the sample rules, and one Spark session for
the whole test session (a JVM start costs tens of seconds)."""

from __future__ import annotations

import os
import shutil
import sys

import polars as pl
import pytest

import postback_lab as pbl
from postback_lab import sample

#: pyspark warns about pandas 3 when it loads; the planning never goes through pandas
PANDAS_WARNING = "ignore:PySpark does not yet fully support pandas:FutureWarning"


def raw_events(conversions: int = 1_500, seed: int = 5) -> pl.DataFrame:
    """Sample export rows plus repeats: the same transaction, status and time again with
    another payout and sub1 (a tie the dedupe breaks by input order), and exact copies."""
    raw = sample.generate(conversions, seed=seed)
    ties = raw.filter(pl.col("type") == "conversion").head(400)
    ties = ties.with_columns(pl.col("sum") * 3, pl.lit("second row").alias("sub1"))
    return pl.concat([raw, ties, raw.tail(200)])


@pytest.fixture
def rules() -> pbl.RuleSet:
    return pbl.read_rules(sample.rules_yaml("http://127.0.0.1:8765"))


@pytest.fixture
def events() -> pbl.Events:
    return pbl.read_events(raw_events())


def same_plan(a: pl.DataFrame, b: pl.DataFrame) -> bool:
    """The same rows (every column, bodies included), whatever their order."""
    return a.sort("dispatch_id").equals(b.sort("dispatch_id"))


@pytest.fixture(scope="session")
def spark():
    """A local Spark: 2 cores, no UI, bound to 127.0.0.1, 4 shuffle partitions, no
    package downloads; workers run this Python."""
    if shutil.which("java") is None and not os.environ.get("JAVA_HOME"):
        pytest.skip("Spark needs Java 17+, which is not installed")
    pytest.importorskip("pyspark", reason="the [spark] extra is not installed")
    import warnings

    os.environ["PYSPARK_PYTHON"] = sys.executable
    os.environ["PYSPARK_DRIVER_PYTHON"] = sys.executable
    os.environ["SPARK_LOCAL_IP"] = "127.0.0.1"
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", category=FutureWarning, module="pyspark")
        from pyspark.sql import SparkSession

        session = (
            SparkSession.builder.master("local[2]")
            .appName("postback_lab tests")
            .config("spark.ui.enabled", "false")
            .config("spark.driver.host", "127.0.0.1")
            .config("spark.driver.bindAddress", "127.0.0.1")
            .config("spark.sql.shuffle.partitions", "4")
            .config("spark.default.parallelism", "2")
            .config("spark.sql.session.timeZone", "UTC")
            .getOrCreate()
        )
        session.sparkContext.setLogLevel("ERROR")
    yield session
    session.stop()
