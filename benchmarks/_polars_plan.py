"""Yardstick: the plan script an analyst would write by hand with Polars and DuckDB.

    python benchmarks/_polars_plan.py EVENTS.parquet RULES.yaml PLAN.parquet

It writes the same plan as ``postback-lab plan`` (same rows in the same order, same
URLs and dispatch ids) for rules like the benchmark's: GET rules whose URLs hold
percent-encoded ``{column}`` macros, scoped by type, offers, publishers, status,
rejection reasons and goals, with an optional delay (a row whose transaction reached
another status within the delay is not fired). Per rule: filter -> rule 7 by an anti-join
of the candidates' later rows -> keep the earliest row only where (transaction_id,
status) is duplicated -> the macro columns as text in generic slots; then one
``collect_all``, then one DuckDB ``COPY`` that percent-encodes each slot over the whole
column, joins the URL, hashes the dispatch ids and streams the plan into the Parquet file
(the plan is never whole in memory a second time). It imports nothing from postback_lab.
``BENCH_THREADS=N`` limits DuckDB to N threads (``POLARS_MAX_THREADS`` does it for Polars).
"""

from __future__ import annotations

import os
import re
import sys
from datetime import timedelta
from pathlib import Path

import duckdb
import polars as pl
import yaml

MACRO = re.compile(r"\{([A-Za-z_][A-Za-z0-9_]*)\}")
KEYS = ["transaction_id", "status"]
UNITS = {"s": 1, "m": 60, "h": 3600, "d": 86400}


def delay_of(text: str | None) -> timedelta:
    if not text:
        return timedelta(0)
    m = re.fullmatch(r"(\d+)([smhd])", str(text))
    if m is None:
        raise SystemExit(f"delay {text!r}: write it like 2m")
    return timedelta(seconds=int(m.group(1)) * UNITS[m.group(2)])


def as_text(column: str, dtype: pl.DataType) -> pl.Expr:
    """A column as the text a URL carries: floats without a trailing .0, times ISO UTC."""
    c = pl.col(column)
    if dtype.is_float():
        return c.cast(pl.String).str.replace(r"\.0$", "")
    if isinstance(dtype, pl.Datetime):
        return c.dt.strftime("%Y-%m-%dT%H:%M:%S%.fZ")
    return c.cast(pl.String)


def one_of(column: str, values: list[object]) -> pl.Expr:
    folded = [str(v).lower() for v in values]
    return pl.col(column).str.to_lowercase().is_in(folded).fill_null(False)


def condition(rule: dict, macros: list[str]) -> pl.Expr:
    cond = pl.col("event_type") == rule.get("type", "conversion")
    if rule.get("offers", "all") != "all":
        cond &= pl.col("offer_id").is_in([str(v) for v in rule["offers"]])
    if rule.get("publishers", "all") != "all":
        cond &= pl.col("publisher_id").is_in([str(v) for v in rule["publishers"]])
    if rule.get("fire_on", "all") != "all":
        cond &= pl.col("status") == rule["fire_on"]
    if "rejection_reasons" in rule:
        cond &= (pl.col("status") != "rejected") | one_of(
            "rejection_reason", rule["rejection_reasons"]
        )
    if "goals" in rule:
        cond &= one_of("goal", rule["goals"])
    for m in macros:
        cond &= pl.col(m).is_not_null()
    return cond


def main(events_path: str, rules_path: str, out_path: str) -> int:
    rules = yaml.safe_load(Path(rules_path).read_text("utf-8"))["postbacks"]
    events = pl.read_parquet(events_path)
    schema = events.schema
    # the only rows that need a dedupe: those sharing (transaction_id, status)
    ev = events.with_columns(pl.struct(KEYS).is_duplicated().alias("dup")).lazy()
    later = ev.select(
        "transaction_id", pl.col("status").alias("s2"), pl.col("occurred_at").alias("t2")
    )
    width = max(len(MACRO.findall(r["url"])) for r in rules)
    queries = []
    for r in rules:
        pieces = MACRO.split(r["url"])  # literal, macro, literal, ..., literal
        literals, macros = pieces[0::2], pieces[1::2]
        delay = delay_of(r.get("delay"))
        rows = ev.filter(condition(r, macros))
        if delay:  # rule 7: another status reached in (occurred_at, occurred_at + delay]
            rows = rows.with_row_index("i")
            hit = (
                rows.select("i", "transaction_id", "status", "occurred_at")
                .join(later, on="transaction_id")
                .filter(
                    pl.col("s2") != pl.col("status"),
                    pl.col("t2") > pl.col("occurred_at"),
                    pl.col("t2") <= pl.col("occurred_at") + delay,
                )
                .select("i")
            )
            rows = rows.join(hit, on="i", how="anti", maintain_order="left").drop("i")
        rows = pl.concat(
            [
                rows.filter(~pl.col("dup")),
                rows.filter(pl.col("dup"))
                .sort("occurred_at", maintain_order=True)
                .unique(KEYS, keep="first", maintain_order=True),
            ]
        )
        host = re.match(r"https?://([^/?#]+)", r["url"]).group(1).lower()  # type: ignore[union-attr]
        queries.append(
            rows.select(
                pl.lit(r["name"]).alias("rule"),
                "transaction_id",
                "event_type",
                "status",
                "offer_id",
                "publisher_id",
                pl.lit(host).alias("host"),
                (pl.col("occurred_at") + delay).alias("due_at"),
                "occurred_at",
                "click_id",
                *[as_text(m, schema[m]).alias(f"m{i}") for i, m in enumerate(macros)],
                *[pl.lit(None, dtype=pl.String).alias(f"m{i}") for i in range(len(macros), width)],
                *[pl.lit(t).alias(f"l{i}") for i, t in enumerate(literals)],
                *[pl.lit("").alias(f"l{i}") for i in range(len(literals), width + 1)],
            )
        )
    parts = pl.collect_all(queries)
    slots = pl.concat(parts, rechunk=False)
    url = " || ".join(
        ["l0"] + [f"coalesce(url_encode(m{i}), '') || l{i + 1}" for i in range(width)]
    )
    con = duckdb.connect()
    con.execute("SET TimeZone = 'UTC'")
    if os.environ.get("BENCH_THREADS"):
        con.execute(f"SET threads = {int(os.environ['BENCH_THREADS'])}")
    con.register("p", slots.to_arrow(compat_level=pl.CompatLevel.newest()))
    del parts
    con.execute(
        f"""COPY (
            SELECT md5(concat_ws(chr(31), rule, transaction_id, status)) AS dispatch_id,
                   rule, transaction_id, event_type, status, offer_id, publisher_id,
                   'GET' AS method, {url} AS url, NULL::VARCHAR AS body, host, due_at,
                   NULL::VARCHAR AS headers, NULL::DOUBLE AS timeout_s, occurred_at,
                   NULL::VARCHAR AS env_at, NULL::VARCHAR AS success, NULL::VARCHAR AS sign_env,
                   click_id,
                   TRUE AS cancel_on_change
            FROM p
        ) TO '{out_path.replace("'", "''")}' (FORMAT parquet, COMPRESSION zstd)"""
    )
    return slots.height


if __name__ == "__main__":
    print(main(*sys.argv[1:4]))
