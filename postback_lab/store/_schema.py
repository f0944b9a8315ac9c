"""DuckDB schema of the attempt log (``postback_log``, ``runs``, ``meta``), versioned with
forward migrations."""

from __future__ import annotations

import polars as pl

from .._util import DISPATCH_KEY

SCHEMA_VERSION = 7

LOG_SCHEMA: dict[str, pl.DataType] = {
    "dispatch_id": pl.String(),
    "run_id": pl.String(),
    "attempt": pl.Int32(),
    "rule": pl.String(),
    "transaction_id": pl.String(),
    "offer_id": pl.String(),
    "publisher_id": pl.String(),
    "method": pl.String(),
    "url": pl.String(),
    "host": pl.String(),
    "due_at": pl.Datetime("us", "UTC"),
    "fired_at": pl.Datetime("us", "UTC"),
    "latency_ms": pl.Float64(),
    "status_code": pl.Int32(),
    "outcome": pl.String(),
    "error": pl.String(),
    "response_body": pl.String(),
    # beyond the contract: the conversion's status and where the row came from
    "status": pl.String(),
    "source": pl.String(),  # 'sent' | 'imported'
}
LOG_COLUMNS = tuple(LOG_SCHEMA)
#: ``paused``: not sent, the host's circuit breaker was open (a later send picks it up);
#: ``test``: an attempt of ``postback-lab test``, never counted as delivered
OUTCOMES = (
    "delivered",
    "failed",
    "timeout",
    "connection_error",
    "dry_run",
    "cancelled",
    "paused",
    "test",  # an attempt made by test-fire: never counted as delivered nor audited
)
#: columns of the log beyond LOG_SCHEMA: searchable, filled in after a run's rows (the
#: rows of a send, a journal replay or an export keep the LOG_SCHEMA shape)
TAG_COLUMNS = ("event_type", "goal")
#: rows that are not attempts of a real send (left out of reconcile and audits)
NOT_ATTEMPTS = "outcome NOT IN ('dry_run', 'test')"

_DDL_V1 = """
CREATE TABLE IF NOT EXISTS meta (key VARCHAR PRIMARY KEY, value VARCHAR);
CREATE TABLE IF NOT EXISTS postback_log (
    dispatch_id VARCHAR, run_id VARCHAR, attempt INTEGER, rule VARCHAR,
    transaction_id VARCHAR, offer_id VARCHAR, publisher_id VARCHAR, method VARCHAR,
    url VARCHAR, host VARCHAR, due_at TIMESTAMPTZ, fired_at TIMESTAMPTZ, latency_ms DOUBLE,
    status_code INTEGER, outcome VARCHAR, error VARCHAR, response_body VARCHAR
);
CREATE TABLE IF NOT EXISTS runs (
    run_id VARCHAR PRIMARY KEY, kind VARCHAR, started_at TIMESTAMPTZ, finished_at TIMESTAMPTZ,
    state VARCHAR, planned BIGINT, skipped_delivered BIGINT, attempts BIGINT,
    delivered BIGINT, failed BIGINT, note VARCHAR
);
"""

# v2: the conversion's status and the row's source ('sent' | 'imported') on the log
_DDL_V2 = """
ALTER TABLE postback_log ADD COLUMN IF NOT EXISTS status VARCHAR;
ALTER TABLE postback_log ADD COLUMN IF NOT EXISTS source VARCHAR DEFAULT 'sent';
UPDATE postback_log SET source = 'sent' WHERE source IS NULL;
"""

# v3: the stored dispatch key (``DISPATCH_KEY``: the dispatch a row belongs to, as a
# 128-bit number), filled in for rows written before it
_DDL_V3 = f"""
ALTER TABLE postback_log ADD COLUMN IF NOT EXISTS dispatch_key UHUGEINT;
UPDATE postback_log SET dispatch_key = {DISPATCH_KEY} WHERE dispatch_key IS NULL;
"""

# Attempt-1 rows of a dispatch that also has a row with another attempt number carry
# ``retried = true``: with it the audit tells single-row dispatches (counted as they are)
# from the others without joining the log with itself (0.7 -> 0.4 s on 10M rows). The
# marks are complete up to the rowid in meta 'retried_upto'; see LogStore.mark_retried.
RETRIED_UPTO = "retried_upto"


def mark_retried_sql(lo: int, hi: int) -> str:
    """Mark the attempt-1 rows among rowids <= ``hi`` that rows (``lo``, ``hi``] show to be
    retried, whichever of the two rows came first."""
    retries = "SELECT dispatch_key FROM postback_log WHERE attempt IS DISTINCT FROM 1"
    return f"""
        UPDATE postback_log SET retried = true
        WHERE attempt = 1 AND NOT retried AND rowid <= {hi} AND (
            dispatch_key IN ({retries} AND rowid > {lo} AND rowid <= {hi})
            OR (rowid > {lo} AND dispatch_key IN ({retries} AND rowid <= {hi})))"""


# v4: the retried marks, complete for the rows already there
_DDL_V4 = f"""
ALTER TABLE postback_log ADD COLUMN IF NOT EXISTS retried BOOLEAN DEFAULT false;
UPDATE postback_log SET retried = false WHERE retried IS NULL;
{mark_retried_sql(-1, 2**62)};
INSERT OR REPLACE INTO meta SELECT '{RETRIED_UPTO}', coalesce(max(rowid), -1)::VARCHAR
FROM postback_log;
"""

# v5: the click id an imported platform log names (Everflow's Transaction ID, Voluum's
# Click ID …), so a row without the conversion's id links through the plan's click ids.
# Like dispatch_key it is the log's own column, not one of LOG_COLUMNS (exports keep theirs)
_DDL_V5 = "ALTER TABLE postback_log ADD COLUMN IF NOT EXISTS click_id VARCHAR;"
#: columns of postback_log beyond LOG_COLUMNS that an append writes when a frame has them
EXTRA_COLUMNS: dict[str, pl.DataType] = {
    "click_id": pl.String(),
    "response_headers": pl.String(),  # v7, below
}

# v6 (operations): the event type and goal of the conversion on each attempt (for log
# search; filled in by the sender after its rows, null on rows from before), the health
# of each host across runs (a host paused by its circuit breaker or by hand stays paused
# for later runs until a probe succeeds or it is resumed), the retries a run left for a
# later one (a rule's retry schedule outliving a run), and on ``runs`` the operator's
# reason for a run that re-sent delivered postbacks on purpose.
_DDL_V6 = """
ALTER TABLE postback_log ADD COLUMN IF NOT EXISTS event_type VARCHAR;
ALTER TABLE postback_log ADD COLUMN IF NOT EXISTS goal VARCHAR;
CREATE TABLE IF NOT EXISTS host_health (
    host VARCHAR PRIMARY KEY, state VARCHAR, paused_since TIMESTAMPTZ, reason VARCHAR,
    failures BIGINT, by_hand BOOLEAN, probed_at TIMESTAMPTZ, updated_at TIMESTAMPTZ
);
ALTER TABLE runs ADD COLUMN IF NOT EXISTS reason VARCHAR;
CREATE TABLE IF NOT EXISTS retry_due (
    dispatch_id VARCHAR PRIMARY KEY, due_at TIMESTAMPTZ, next_try INTEGER,
    give_up_at TIMESTAMPTZ, run_id VARCHAR
);
"""

# v7: the headers of each answer (``Name: value`` lines, secrets masked, the first KiB),
# for the log's text search; the log's own column like click_id (Delta exports keep
# LOG_COLUMNS), null on rows from before and on imported rows
_DDL_V7 = "ALTER TABLE postback_log ADD COLUMN IF NOT EXISTS response_headers VARCHAR;"

MIGRATIONS: dict[int, str] = {
    1: _DDL_V1,
    2: _DDL_V2,
    3: _DDL_V3,
    4: _DDL_V4,
    5: _DDL_V5,
    6: _DDL_V6,
    7: _DDL_V7,
}
