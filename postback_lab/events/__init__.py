"""Events: read event logs into the canonical Polars frame (one row per event, canonical
columns and dtypes) plus a quarantine frame of the rows that could not be read."""

from ._events import QUARANTINE_SCHEMA, Events
from ._presets import PRESETS, Preset, detect, get_preset, preset_names
from ._read import read_events
from ._schema import CANONICAL, EVENT_TYPES, SCHEMA, STATUSES, normalise_header

__all__ = [
    "CANONICAL",
    "EVENT_TYPES",
    "PRESETS",
    "QUARANTINE_SCHEMA",
    "SCHEMA",
    "STATUSES",
    "Events",
    "Preset",
    "detect",
    "get_preset",
    "normalise_header",
    "preset_names",
    "read_events",
]
