"""Yardstick: the plan as one hand-written DuckDB SQL script.

    python benchmarks/_duckdb_plan.py EVENTS.parquet RULES.yaml PLAN.parquet

The same rows, URLs and dispatch ids as ``postback-lab plan`` for rules like the
benchmark's (see ``_polars_plan``), the row order left to DuckDB. What is shared is
computed once: which rows share their (transaction_id, status) with another row, and
each row's next different-status time (rule 7); per rule, only the shared rows go
through a window for the dedupe. The plan is written by DuckDB's own ``COPY``. It
imports nothing from postback_lab. ``BENCH_THREADS=N`` limits DuckDB to N threads.
"""

from __future__ import annotations

import os
import re
import sys
from datetime import timedelta
from pathlib import Path

import duckdb
import yaml

MACRO = re.compile(r"\{([A-Za-z_][A-Za-z0-9_]*)\}")
UNITS = {"s": 1, "m": 60, "h": 3600, "d": 86400}


def delay_of(text: str | None) -> timedelta:
    if not text:
        return timedelta(0)
    m = re.fullmatch(r"(\d+)([smhd])", str(text))
    if m is None:
        raise SystemExit(f"delay {text!r}: write it like 2m")
    return timedelta(seconds=int(m.group(1)) * UNITS[m.group(2)])


def lit(s: object) -> str:
    return "'" + str(s).replace("'", "''") + "'"


def one_of(column: str, values: list[object], *, fold: bool = False) -> str:
    if fold:
        return f"lower({column}) IN ({', '.join(lit(str(v).lower()) for v in values)})"
    return f"{column} IN ({', '.join(lit(v) for v in values)})"


def text(column: str, types: dict[str, str]) -> str:
    """A column as the text a URL carries: floats without a trailing .0, times ISO UTC."""
    kind = types[column]
    if kind in ("DOUBLE", "FLOAT"):
        return f"regexp_replace(CAST({column} AS VARCHAR), '\\.0$', '')"
    if kind.startswith("TIMESTAMP"):
        return f"strftime({column}, '%Y-%m-%dT%H:%M:%SZ')"
    return f"CAST({column} AS VARCHAR)"


def condition(rule: dict, macros: list[str]) -> str:
    conds = [f"event_type = {lit(rule.get('type', 'conversion'))}"]
    if rule.get("offers", "all") != "all":
        conds.append(one_of("offer_id", rule["offers"]))
    if rule.get("publishers", "all") != "all":
        conds.append(one_of("publisher_id", rule["publishers"]))
    if rule.get("fire_on", "all") != "all":
        conds.append(f"status = {lit(rule['fire_on'])}")
    if "rejection_reasons" in rule:
        ok = one_of("rejection_reason", rule["rejection_reasons"], fold=True)
        conds.append(f"(status <> 'rejected' OR coalesce({ok}, false))")
    if "goals" in rule:
        conds.append(f"coalesce({one_of('goal', rule['goals'], fold=True)}, false)")
    conds += [f"{m} IS NOT NULL" for m in macros]
    delay = delay_of(rule.get("delay"))
    if delay:
        seconds = int(delay.total_seconds())
        conds.append(
            f"(next_change IS NULL OR next_change > occurred_at + INTERVAL {seconds} SECOND)"
        )
    return " AND ".join(conds)


def main(events_path: str, rules_path: str, out_path: str) -> int:
    rules = yaml.safe_load(Path(rules_path).read_text("utf-8"))["postbacks"]
    con = duckdb.connect()
    con.execute("SET TimeZone = 'UTC'")
    if os.environ.get("BENCH_THREADS"):
        con.execute(f"SET threads = {int(os.environ['BENCH_THREADS'])}")
    con.execute(
        f"""CREATE TEMP TABLE ev AS
            SELECT *, count(*) OVER (PARTITION BY transaction_id, status) > 1 AS dup
            FROM read_parquet({lit(events_path)})"""
    )
    if any(delay_of(r.get("delay")) for r in rules):
        con.execute(
            """CREATE TEMP TABLE nc AS
               SELECT a.rowid AS row, min(b.occurred_at) AS next_change
               FROM ev a JOIN ev b USING (transaction_id)
               WHERE b.status <> a.status AND b.occurred_at > a.occurred_at
               GROUP BY a.rowid"""
        )
        source = "(SELECT ev.*, nc.next_change FROM ev LEFT JOIN nc ON nc.row = ev.rowid)"
    else:
        source = "(SELECT *, NULL::TIMESTAMPTZ AS next_change FROM ev)"
    con.execute(f"CREATE TEMP VIEW src AS {source}")
    empty = con.sql("SELECT * FROM src LIMIT 0")
    types = dict(zip(empty.columns, map(str, empty.types), strict=True))
    parts = []
    for r in rules:
        pieces = MACRO.split(r["url"])
        url = " || ".join(
            lit(p) if i % 2 == 0 else f"url_encode({text(p, types)})"
            for i, p in enumerate(pieces)
            if i % 2 or p
        )
        host = re.match(r"https?://([^/?#]+)", r["url"]).group(1).lower()  # type: ignore[union-attr]
        seconds = int(delay_of(r.get("delay")).total_seconds())
        select = f"""SELECT md5(concat_ws(chr(31), {lit(r["name"])}, transaction_id, status))
                        AS dispatch_id,
                     {lit(r["name"])} AS rule, transaction_id, event_type, status, offer_id,
                     publisher_id, 'GET' AS method, {url} AS url, NULL::VARCHAR AS body,
                     {lit(host)} AS host, occurred_at + INTERVAL {seconds} SECOND AS due_at,
                     NULL::VARCHAR AS headers, NULL::DOUBLE AS timeout_s, occurred_at,
                     NULL::VARCHAR AS env_at, NULL::VARCHAR AS success, NULL::VARCHAR AS sign_env,
                     click_id,
                     TRUE AS cancel_on_change
                  FROM src WHERE {condition(r, MACRO.split(r["url"])[1::2])}"""
        parts.append(f"({select} AND NOT dup)")
        parts.append(
            f"""({select} AND dup QUALIFY row_number() OVER
                 (PARTITION BY transaction_id, status ORDER BY occurred_at) = 1)"""
        )
    con.execute(
        f"COPY ({' UNION ALL '.join(parts)}) TO {lit(out_path)} (FORMAT parquet, COMPRESSION zstd)"
    )
    return int(con.sql(f"SELECT count(*) FROM read_parquet({lit(out_path)})").fetchall()[0][0])


if __name__ == "__main__":
    print(main(*sys.argv[1:4]))
