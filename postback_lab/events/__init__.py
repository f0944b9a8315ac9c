"""Events: read event logs into the canonical Polars frame (DESIGN contract 1)."""

from ._read import Events, read_events
from ._schema import CANONICAL, EVENT_TYPES, SCHEMA, STATUSES

__all__ = ["CANONICAL", "EVENT_TYPES", "SCHEMA", "STATUSES", "Events", "read_events"]
