"""The other baseline: a straightforward per-row Python evaluator."""

from __future__ import annotations

import hashlib
from urllib.parse import quote

import polars as pl

from postback_lab.rules import RuleSet


def _text(v) -> str:
    if isinstance(v, float):
        return repr(v).removesuffix(".0")
    if hasattr(v, "strftime"):
        return v.strftime("%Y-%m-%dT%H:%M:%SZ")
    return str(v)


def naive_plan(events: pl.DataFrame, rules: RuleSet) -> int:
    rows = events.sort("occurred_at").to_dicts()
    out = []
    for r in rules:
        seen = set()
        for e in rows:
            if e["event_type"] != r.type or not r.enabled:
                continue
            if r.offers is not None and e["offer_id"] not in r.offers:
                continue
            if r.publishers is not None and e["publisher_id"] not in r.publishers:
                continue
            if r.fire_on != "all" and e["status"] != r.fire_on:
                continue
            if (
                r.rejection_reasons is not None
                and e["status"] == "rejected"
                and e["rejection_reason"] not in r.rejection_reasons
            ):
                continue
            if r.goals is not None and e["goal"] not in r.goals:
                continue
            if any(e[c] is None for c in r.columns):
                continue
            key = (e["transaction_id"], e["status"])
            if key in seen:
                continue
            seen.add(key)
            url = "".join(
                p
                if isinstance(p, str)
                else (
                    quote(_text(e[p.name]), safe="-._~")
                    if p.kind == "encoded"
                    else _text(e[p.name])
                )
                for p in r.url.parts
            )
            did = hashlib.md5(f"{r.name}\x1f{key[0]}\x1f{key[1]}".encode()).hexdigest()
            out.append((did, r.name, url))
    return len(out)
