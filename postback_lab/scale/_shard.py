"""Send shards: each host belongs to exactly one of N shards, by a stable hash of its name,
so every per-host limit holds without the shards talking to each other."""

from __future__ import annotations

import hashlib
import re
from typing import Any

import polars as pl

from .._errors import InputError
from ..plan import Plan, read_plan
from ..store import LogReader, open_log


def parse_shard(text: str) -> tuple[int, int]:
    """``"K/N"`` -> (K, N), 1 <= K <= N; anything else is an InputError."""
    m = re.fullmatch(r"\s*(\d+)\s*/\s*(\d+)\s*", str(text))
    if not m or not 1 <= int(m.group(1)) <= int(m.group(2)):
        raise InputError(
            f"--shard {text!r}: write K/N with 1 <= K <= N, e.g. 1/4 for the first of 4 shards"
        )
    return int(m.group(1)), int(m.group(2))


def shard_of(host: str | None, n: int) -> int:
    """The shard (1..n) of a host: ``int(md5(host.lower()).hexdigest(), 16) % n + 1`` —
    the same in every process, on every machine, and easy to compute elsewhere."""
    digest = hashlib.md5((host or "").lower().encode("utf-8"), usedforsecurity=False)
    return int(digest.hexdigest(), 16) % n + 1


def host_shards(hosts: pl.Series, n: int) -> pl.Series:
    """``shard_of`` each host of a column (computed once per distinct host)."""
    shards = {h: shard_of(h, n) for h in hosts.unique().to_list()}
    return hosts.replace_strict(shards, return_dtype=pl.Int32).alias("shard")


def shard_plan(plan: Plan | pl.DataFrame | str, shard: str | tuple[int, int]) -> Plan:
    """The dispatches of ``plan`` whose host falls in ``shard`` (``"K/N"`` or (K, N))."""
    k, n = parse_shard(shard) if isinstance(shard, str) else _checked(*shard)
    p = plan if isinstance(plan, Plan) else read_plan(plan)
    if n == 1:
        return p
    hosts = p.frame["host"].unique()
    mine = hosts.filter(host_shards(hosts, n) == k)
    return p.filter(pl.col("host").is_in(mine.implode()))


def _checked(k: int, n: int) -> tuple[int, int]:
    return parse_shard(f"{k}/{n}")


def delivered_elsewhere(plan: Plan, central: Any) -> tuple[Plan, int]:
    """``plan`` less the dispatches ``central`` (a log, a path or ``delta:PATH``) shows
    delivered, and how many those were: a dispatch delivered by another shard (or under
    another number of shards) is never sent again."""
    store, owned = (central, False) if isinstance(central, LogReader) else open_log(central, "read")
    try:
        done = store.delivered_ids(plan.frame["dispatch_id"])
    finally:
        if owned:
            store.close()
    if not done:
        return plan, 0
    return plan.filter(~pl.col("dispatch_id").is_in(list(done))), len(done)
