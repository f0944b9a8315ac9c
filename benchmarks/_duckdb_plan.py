"""The baseline: a hand-written DuckDB SQL doing the same filtering, dedupe, rendering."""

from __future__ import annotations

import duckdb
import polars as pl

from postback_lab.rules import RuleSet


def _lit(s: str) -> str:
    return "'" + s.replace("'", "''") + "'"


def _text(col: str) -> str:
    if col == "payout":
        return "regexp_replace(CAST(payout AS VARCHAR), '\\.0$', '')"
    if col == "occurred_at":
        return "strftime(occurred_at, '%Y-%m-%dT%H:%M:%SZ')"
    return col


def _in(col: str, values) -> str:
    return f"{col} IN ({', '.join(_lit(v) for v in values)})"


def duckdb_plan(events: pl.DataFrame, rules: RuleSet) -> int:
    con = duckdb.connect()
    con.execute("SET TimeZone = 'UTC'")
    con.register("ev", events.to_arrow())
    parts = []
    for r in rules:
        conds = [f"event_type = {_lit(r.type)}"]
        if r.offers is not None:
            conds.append(_in("offer_id", r.offers))
        if r.publishers is not None:
            conds.append(_in("publisher_id", r.publishers))
        if r.fire_on != "all":
            conds.append(f"status = {_lit(r.fire_on)}")
        if r.rejection_reasons is not None:
            conds.append(
                f"(status <> 'rejected' OR {_in('rejection_reason', r.rejection_reasons)})"
            )
        if r.goals is not None:
            conds.append(_in("goal", r.goals))
        conds += [f"{c} IS NOT NULL" for c in r.columns]
        url = " || ".join(
            _lit(p)
            if isinstance(p, str)
            else (f"url_encode({_text(p.name)})" if p.kind == "encoded" else _text(p.name))
            for p in r.url.parts
        )
        parts.append(f"""
            SELECT * FROM (
              SELECT {_lit(r.name)} AS rule, transaction_id, event_type, status, offer_id,
                     publisher_id, {url} AS url,
                     occurred_at + INTERVAL {int(r.delay.total_seconds())} SECOND AS due_at,
                     row_number() OVER (PARTITION BY transaction_id, status
                                        ORDER BY occurred_at) AS rn
              FROM ev WHERE {" AND ".join(conds)}) WHERE rn = 1""")
    sql = " UNION ALL ".join(parts)
    out = con.sql(
        f"SELECT md5(concat_ws(chr(31), rule, transaction_id, status)) AS dispatch_id, "
        f"* EXCLUDE (rn) FROM ({sql})"
    ).arrow()
    return out.num_rows if hasattr(out, "num_rows") else out.read_all().num_rows
