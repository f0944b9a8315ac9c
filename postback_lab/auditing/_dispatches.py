"""One definition of a postback for every count of the log: the dispatch it belongs to.

Rows the sender wrote carry their dispatch. Imported rows (a platform's own log) do not
always: an export without a conversion-status column, or one spelling a rule ``SALES``
where our rules say ``sales``, gives rows keyed by what the export says. Counted as
they are, an imported failure that a later send delivered would be a second,
undelivered postback. So before counting, each imported row is linked by the store's
one linking rule (``LogReader.links``, the rule reconcile and ``send`` use) to the
dispatches the sender logged; a row that links to one counts as an attempt of it (its
rule, publisher and offer are that dispatch's). Imported rows that link to none keep a
postback of their own, their rule spelt as the log's other rows spell it.

The result is a small frame (one row per imported row that moves) that the audit, the
explorer and ``log show`` join onto the log through ``log_source``.
"""

from __future__ import annotations

import polars as pl

from .._util import DISPATCH_ID, KEY_TEXT
from ..store import DIRECT, NOT_ATTEMPTS, LogReader, rule_key

#: imported rows, and any row without a dispatch id: the rows linking places
LOOSE = f"(source = 'imported' OR dispatch_id IS NULL) AND {NOT_ATTEMPTS}"
_ROW = ("rule", "transaction_id", "fired_at", "status_code", "attempt")
#: the remap frame's columns: the row (its stored key and attempt) -> what it counts as
#: (keys are 128-bit: Polars has no such integer, so each travels as two halves)
REMAP_SCHEMA = {
    "__okhi": pl.UInt64(),
    "__oklo": pl.UInt64(),
    "__oa": pl.Int32(),
    "__nkhi": pl.UInt64(),
    "__nklo": pl.UInt64(),
    "__rule": pl.String(),
    "__pub": pl.String(),
    "__off": pl.String(),
}


def log_source(remapped: bool) -> str:
    """The relation every count reads: ``postback_log`` itself, or (``remapped``) the log
    with each row of the ``remap`` frame counted as the dispatch it links to: its
    ``dispatch_key``, ``rule``, ``publisher_id`` and ``offer_id`` replaced, and
    ``__moved`` set on it and on every row of a dispatch that gained rows."""
    if not remapped:
        return "postback_log"
    ok = "(__okhi::UHUGEINT << 64 | __oklo::UHUGEINT)"
    nk = "(__nkhi::UHUGEINT << 64 | __nklo::UHUGEINT)"
    return f"""(
        SELECT l.* REPLACE (
                coalesce(r.__nk, l.dispatch_key) AS dispatch_key,
                coalesce(r.__rule, l.rule) AS rule,
                coalesce(l.publisher_id, r.__pub) AS publisher_id,
                coalesce(l.offer_id, r.__off) AS offer_id),
            l.rowid AS rowid,
            r.__nk IS NOT NULL OR l.dispatch_key IN (SELECT {nk} FROM remap) AS __moved
        FROM postback_log l LEFT JOIN (
            SELECT {ok} AS __ok, __oa, {nk} AS __nk, __rule, __pub, __off FROM remap) r
            ON l.dispatch_key = r.__ok AND l.attempt = r.__oa)"""


_CACHE: dict[tuple[str, int, int], pl.DataFrame | None] = {}


def remap(store: LogReader) -> pl.DataFrame | None:
    """The imported rows that count as another dispatch than their stored key says (see
    the module docstring), or None when there are none (the log is read as it is).

    Kept per log file and state (its last row id and row count: the log is append-only,
    and pruning lowers the count), so an explorer's clicks link the imports once (about
    0.5 s for 100,000 imported rows beside 3M sent ones)."""
    state = store.sql("SELECT coalesce(max(rowid), -1), count(*) FROM postback_log").row(0)
    key = (str(store.path.resolve()), int(state[0]), int(state[1]))
    if key not in _CACHE:
        if len(_CACHE) >= 8:
            _CACHE.pop(next(iter(_CACHE)))
        _CACHE[key] = _remap(store)
    return _CACHE[key]


def _remap(store: LogReader) -> pl.DataFrame | None:
    # two EXISTS that DuckDB answers from its column statistics on a log without imports
    # (1 ms on 3M rows; a scan for the combined condition takes 15)
    loose = store.sql(
        "SELECT EXISTS (SELECT 1 FROM postback_log WHERE source = 'imported') "
        "OR EXISTS (SELECT 1 FROM postback_log WHERE dispatch_id IS NULL)"
    ).item()
    if not loose:
        return None
    spelt = _spellings(store)
    # the dispatches the log knows for the imported rows' transactions, as a plan: those
    # the sender logged, and those imported rows with a conversion status name (under
    # the rule's one spelling), due when first logged
    sent = store.sql(
        f"""
        WITH tx AS (SELECT DISTINCT transaction_id FROM postback_log WHERE {LOOSE}),
        direct AS (
            SELECT dispatch_id, any_value(rule) AS rule,
                any_value(transaction_id) AS transaction_id, any_value(status) AS status,
                any_value(offer_id) AS offer_id, any_value(publisher_id) AS publisher_id,
                any_value(host) AS host, min(due_at) AS due_at
            FROM postback_log SEMI JOIN tx USING (transaction_id)
            WHERE {DIRECT} AND {NOT_ATTEMPTS} GROUP BY dispatch_id),
        named AS (
            SELECT coalesce(__canon, rule) AS rule, transaction_id, status,
                min(fired_at) AS due_at
            FROM postback_log LEFT JOIN spelt USING (rule)
            WHERE {LOOSE} AND rule IS NOT NULL AND status IS NOT NULL GROUP BY ALL)
        SELECT * FROM direct
        UNION ALL BY NAME
        SELECT md5({KEY_TEXT}) AS dispatch_id, rule, transaction_id, status,
            NULL::VARCHAR AS offer_id, NULL::VARCHAR AS publisher_id, NULL::VARCHAR AS host,
            due_at
        FROM named ANTI JOIN direct USING (rule, transaction_id, status)""",
        spelt=spelt,
    )
    linked = store.links(sent).rows.select(*_ROW, pl.col("dispatch_id").alias("__to"))
    moved = store.sql(
        f"""
        WITH loose AS (
            SELECT dispatch_key AS __ok, attempt AS __oa, rule, transaction_id, status,
                fired_at, status_code
            FROM postback_log WHERE {LOOSE}),
        placed AS (
            SELECT loose.*, linked.__to, sent.rule AS __srule, sent.publisher_id AS __pub,
                sent.offer_id AS __off, spelt.__canon
            FROM loose
            LEFT JOIN linked ON loose.rule IS NOT DISTINCT FROM linked.rule
                AND loose.transaction_id IS NOT DISTINCT FROM linked.transaction_id
                AND loose.fired_at IS NOT DISTINCT FROM linked.fired_at
                AND loose.status_code IS NOT DISTINCT FROM linked.status_code
                AND loose.__oa IS NOT DISTINCT FROM linked.attempt
            LEFT JOIN sent ON linked.__to = sent.dispatch_id
            LEFT JOIN spelt ON loose.rule = spelt.rule),
        keyed AS (
            SELECT __ok, __oa, __pub, __off,
                CASE WHEN __to IS NOT NULL THEN __srule ELSE coalesce(__canon, rule) END
                    AS __rule,
                CASE WHEN __to IS NOT NULL THEN md5_number(__to)
                    ELSE md5_number(coalesce({_with_rule(DISPATCH_ID)}, {_with_rule(KEY_TEXT)}))
                END AS __nk,
                rule
            FROM placed)
        SELECT {_halves("__ok")}, __oa, {_halves("__nk")}, __rule, __pub, __off FROM keyed
        WHERE __nk IS DISTINCT FROM __ok OR __rule IS DISTINCT FROM rule
            OR __pub IS NOT NULL OR __off IS NOT NULL""",
        linked=linked,
        sent=sent,
        spelt=spelt,
    )
    return moved.cast(REMAP_SCHEMA) if moved.height else None  # type: ignore[arg-type]


def _halves(key: str) -> str:
    """A 128-bit key column as its two 64-bit halves (``<key>hi``, ``<key>lo``)."""
    low = "18446744073709551615::UHUGEINT"
    return f"({key} >> 64)::UBIGINT AS {key}hi, ({key} & {low})::UBIGINT AS {key}lo"


def _with_rule(sql: str) -> str:
    """A key expression over ``rule`` with the canonical spelling in its place."""
    return sql.replace("rule", "coalesce(__canon, rule)")


def _spellings(store: LogReader) -> pl.DataFrame:
    """Each imported rule spelling -> the one spelling the log uses for that rule (case and
    spaces aside): the sender's, else the imports' most frequent (ties: the first in sort
    order). Only spellings that change are listed."""
    names = store.sql(
        "SELECT rule, count(*) AS n, bool_or(source IS DISTINCT FROM 'imported') AS sent "
        "FROM postback_log WHERE rule IS NOT NULL GROUP BY rule"
    )
    if names.height < 2:
        return pl.DataFrame(schema={"rule": pl.String(), "__canon": pl.String()})
    canon = (
        names.with_columns(rule_key(pl.col("rule")).alias("__key"))
        .sort(["sent", "n", "rule"], descending=[True, True, False])
        .group_by("__key", maintain_order=True)
        .agg(pl.col("rule").first().alias("__canon"))
    )
    return (
        names.with_columns(rule_key(pl.col("rule")).alias("__key"))
        .join(canon, on="__key")
        .filter(pl.col("rule") != pl.col("__canon"))
        .select("rule", "__canon")
    )
