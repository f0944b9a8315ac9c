"""Events: read event logs into the canonical Polars frame (one row per event, canonical
columns and dtypes) plus a quarantine frame of the rows that could not be read."""

from ._events import QUARANTINE_SCHEMA, Events
from ._read import read_events
from ._schema import CANONICAL, EVENT_TYPES, SCHEMA, STATUSES, normalise_header

__all__ = [
    "CANONICAL",
    "EVENT_TYPES",
    "QUARANTINE_SCHEMA",
    "SCHEMA",
    "STATUSES",
    "Events",
    "normalise_header",
    "read_events",
]
