"""Deterministic sample data: clicks, conversions with status transitions, post-conversion
events with goals, a ``postbacks.yaml`` and a platform postback-log export with gaps.

The default-size files ship inside the package (``data_dir()``, ``paths()``), so the demo,
the notebooks and the docs work from an installed wheel; ``write(directory, N)`` makes
them at any size (``generate(conversions=N, seed=0)`` is vectorised and scales to 10M rows).
"""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path

import numpy as np
import polars as pl

OFFERS = ["001", "002", "017", "042", "100"]
PUBLISHERS = ["7", "12", "31", "44", "58", "63"]
REASONS = ["vpn_proxy", "duplicate", "fraud_score", "geo_mismatch"]
GOALS = ["deposit", "ftd", "registration"]
PAYOUTS = [1.5, 2.0, 12.5, 30.0, 45.25]
SUB1 = ["camp a&b=c", "spring/sale", "100% off", "plain", "q?x=1#frag"]
SUB2 = ["café", "Ünïcode ✓", "日本", "emoji 🎉", "naïve+plus"]
START = datetime(2026, 11, 1, tzinfo=UTC)
#: the sample files by name, as ``write`` and ``paths`` return them
FILES = {"events": "events.csv", "rules": "postbacks.yaml", "platform_log": "platform_log.csv"}
RULES_TEMPLATE = """\
# Sample postback rules: the hosts live under {base}
postbacks:
  - name: Affili approved sales
    type: conversion
    offers: all
    publishers: [7, 12, 31]
    fire_on: approved
    goals: [sale]
    delay: 2m
    url: {base}/affili/postback?clickid={{external_transaction_id}}&payout={{payout}}&sub={{sub1}}
  - name: Affili rejected fraud
    type: conversion
    publishers: [7, 12, 31]
    fire_on: rejected
    rejection_reasons: [vpn_proxy, fraud_score]
    url: {base}/affili/reject?clickid={{external_transaction_id}}&reason={{rejection_reason}}
  - name: Partner B leads
    type: conversion
    offers: ["001", "017"]
    publishers: all
    fire_on: all
    goals: [lead]
    url: {base}/partner-b/{{publisher_id}}/lead?tid={{transaction_id}}&status={{status}}&s2={{sub2}}
  - name: CRM deposits
    type: event
    goals: [deposit, ftd]
    fire_on: approved
    method: POST
    url: {base}/crm/events
    headers: {{Authorization: "Bearer {{env:CRM_TOKEN}}"}}
    body: >-
      {{"id": "{{{{ transaction_id }}}}", "goal": "{{{{ goal }}}}",
      "at": "{{{{ occurred_at }}}}"}}
    timeout: 10s
"""


def _ids(prefix: str, idx: np.ndarray) -> pl.Series:
    return pl.select(
        pl.format(prefix + "{}", pl.lit(pl.Series(idx)).cast(pl.String).str.zfill(8))
    ).to_series()


def _blank(values: pl.Series, mask: np.ndarray) -> pl.Series:
    """``values`` with null where ``mask`` is true."""
    return pl.select(
        pl.when(pl.lit(pl.Series(mask))).then(None).otherwise(pl.lit(values))
    ).to_series()


def rules_yaml(base_url: str = "http://127.0.0.1:8765") -> str:
    """The sample ``postbacks.yaml`` with every URL under ``base_url``."""
    return RULES_TEMPLATE.format(base=base_url.rstrip("/"))


def generate(conversions: int = 2_000, *, seed: int = 0) -> pl.DataFrame:
    """Clicks, conversion status rows and post-conversion events, in raw export form
    (status aliases such as ``declined``, ids as text, offsets in some timestamps)."""
    rng = np.random.default_rng(seed)
    n = conversions
    idx = np.arange(n)
    conv_at = rng.integers(0, 7 * 86400, n)
    offer = rng.integers(0, len(OFFERS), n)
    pub = rng.integers(0, len(PUBLISHERS), n)
    goal = np.where(rng.random(n) < 0.7, "sale", "lead")
    ext = pl.select(pl.format("aff-{}", pl.lit(pl.Series(rng.integers(0, 2**40, n))))).to_series()
    ext = _blank(ext, rng.random(n) < 0.03)
    payout = np.array(PAYOUTS)[rng.integers(0, len(PAYOUTS), n)]
    sub1 = pl.Series(np.array(SUB1)[rng.integers(0, len(SUB1), n)])
    sub2 = _blank(pl.Series(np.array(SUB2)[rng.integers(0, len(SUB2), n)]), rng.random(n) < 0.1)
    base = pl.DataFrame(
        {
            "txn_id": _ids("T", idx),
            "clickid": _ids("C", idx),
            "aff_click_id": ext,
            "offer": pl.Series(np.array(OFFERS)[offer]),
            "affiliate_id": pl.Series(np.array(PUBLISHERS)[pub]),
            "goal": pl.Series(goal),
            "sum": pl.Series(payout),
            "currency": pl.Series(np.where(rng.random(n) < 0.8, "USD", "EUR")),
            "sub1": sub1,
            "sub2": sub2,
            "t": pl.Series(conv_at),
        }
    )
    # every conversion starts pending; most then reach a final status a few hours later
    final = rng.random(n)
    final_status = np.where(final < 0.72, "approved", np.where(final < 0.95, "rejected", ""))
    alias = rng.random(n) < 0.3
    final_text = np.where((final_status == "rejected") & alias, "declined", final_status)
    reason = np.array(REASONS)[rng.integers(0, len(REASONS), n)]
    later = conv_at + rng.integers(3600, 3 * 86400, n)
    pending = base.with_columns(
        type=pl.lit("conversion"), status=pl.lit("pending"), reason=pl.lit(None, dtype=pl.String)
    )
    done = base.with_columns(
        type=pl.lit("conversion"),
        status=pl.Series(final_text),
        reason=_blank(pl.Series(reason), final_status != "rejected"),
        t=pl.Series(later),
    ).filter(pl.col("status") != "")
    clicks = base.with_columns(
        txn_id=pl.col("clickid"),
        type=pl.lit("click"),
        status=pl.lit(None, dtype=pl.String),
        reason=pl.lit(None, dtype=pl.String),
        goal=pl.lit(None, dtype=pl.String),
        sum=pl.lit(None, dtype=pl.Float64),
        t=pl.col("t") - 600,
    ).head(max(1, n // 4))
    m = max(1, n // 5)
    ev = base.head(m).with_columns(
        txn_id=_ids("E", np.arange(m)),
        type=pl.lit("event"),
        status=pl.lit("approved"),
        reason=pl.lit(None, dtype=pl.String),
        goal=pl.Series(np.array(GOALS)[rng.integers(0, len(GOALS), m)]),
        t=pl.col("t") + pl.Series(rng.integers(86400, 3 * 86400, m)),
    )
    rows = pl.concat([clicks, pending, done, ev], how="diagonal")
    start = pl.lit(START)
    stamp = (start + pl.duration(seconds=pl.col("t"))).dt.strftime("%Y-%m-%dT%H:%M:%SZ")
    return (
        rows.with_columns(timestamp=stamp)
        .select(
            "txn_id",
            "type",
            "status",
            "reason",
            "goal",
            "timestamp",
            "clickid",
            "aff_click_id",
            "offer",
            "affiliate_id",
            "sum",
            "currency",
            "sub1",
            "sub2",
        )
        .sort("timestamp")
    )


def platform_log(plan_frame: pl.DataFrame, *, seed: int = 0) -> pl.DataFrame:
    """A platform's postback-log export for ``plan_frame``: ~15% never fired (gaps), ~10%
    fired with a failure, the rest delivered — in the platform's own header names."""
    rng = np.random.default_rng(seed + 1)
    n = plan_frame.height
    roll = pl.Series(rng.random(n))
    fired = plan_frame.with_columns(roll=roll).filter(pl.col("roll") >= 0.15)
    failed = fired["roll"] < 0.25
    code = pl.select(pl.when(pl.lit(failed)).then(pl.lit(500)).otherwise(pl.lit(200))).to_series()
    return fired.select(
        pl.col("due_at").dt.strftime("%Y-%m-%d %H:%M:%S+00:00").alias("Firing Time"),
        pl.col("transaction_id").alias("Transaction ID"),
        code.alias("Response Code"),
        pl.when(pl.lit(failed))
        .then(pl.lit("Internal Server Error"))
        .otherwise(pl.lit(""))
        .alias("Error"),
        pl.when(pl.lit(failed))
        .then(pl.lit("oops"))
        .otherwise(pl.lit("OK"))
        .alias("Server Response"),
        pl.col("rule").alias("Postback Name"),
        pl.col("url").alias("URL"),
        pl.col("offer_id").alias("Offer ID"),
        pl.col("publisher_id").alias("Publisher ID"),
        pl.col("status").alias("Status"),
    )


def write(
    directory: str | Path,
    conversions: int = 2_000,
    *,
    seed: int = 0,
    base_url: str = "http://127.0.0.1:8765",
) -> dict[str, Path]:
    """Write ``events.csv``, ``postbacks.yaml`` and ``platform_log.csv`` into ``directory``."""
    from .plan import build_plan

    out = Path(directory)
    out.mkdir(parents=True, exist_ok=True)
    files = {key: out / name for key, name in FILES.items()}
    generate(conversions, seed=seed).write_csv(files["events"])
    files["rules"].write_text(rules_yaml(base_url), encoding="utf-8")
    plan = build_plan(str(files["events"]), str(files["rules"]))
    platform_log(plan.frame, seed=seed).write_csv(files["platform_log"])
    return files


def data_dir() -> Path:
    """The folder of the bundled sample files, inside the installed package: what
    ``write(directory)`` writes with the defaults (2,000 conversions, seed 0, rules under
    ``http://127.0.0.1:8765``)."""
    return Path(__file__).resolve().parent / "_data"


def paths() -> dict[str, Path]:
    """The bundled sample files by name: ``events``, ``rules`` and ``platform_log``."""
    return {key: data_dir() / name for key, name in FILES.items()}
