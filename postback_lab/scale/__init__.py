"""Scale: the same rules past one machine.

``plan_partitioned`` plans events in buckets of whole transactions, on a local process
pool or on Spark, and writes the plan as Parquet parts (``plan_bucket`` plans one
bucket). ``shard_plan`` keeps the dispatches of one send shard (hosts split by a stable
hash); ``delivered_elsewhere`` drops what a central log shows delivered. ``export_log``
appends DuckDB attempt logs to a central Delta Lake table exactly once, ``optimize_log``
compacts it; ``open_delta_log`` (from ``store``, re-exported here) reads it as a log:
audit, reconcile and the explorer take it, also named ``"delta:PATH"``.
"""

from ..store import DeltaLog, open_delta_log, table_uri
from ._bucket import plan_bucket
from ._delta import ExportResult, export_log, optimize_log
from ._engines import ENGINES, plan_partitioned
from ._output import PartitionedPlan
from ._shard import delivered_elsewhere, host_shards, parse_shard, shard_of, shard_plan
from ._spark import spark_event_columns

__all__ = [
    "ENGINES",
    "DeltaLog",
    "ExportResult",
    "PartitionedPlan",
    "delivered_elsewhere",
    "export_log",
    "host_shards",
    "open_delta_log",
    "optimize_log",
    "parse_shard",
    "plan_bucket",
    "plan_partitioned",
    "shard_of",
    "shard_plan",
    "spark_event_columns",
    "table_uri",
]
