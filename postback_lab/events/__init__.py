"""Events: read event logs into the canonical Polars frame (one row per event, canonical
columns and dtypes) plus a quarantine frame of the rows that could not be read."""

from ._csv import careful_csv
from ._events import QUARANTINE_SCHEMA, Events, one_chunk
from ._normalise import status as normalise_status
from ._options import ignore_status as check_ignore_status
from ._options import status_map as check_status_map
from ._presets import PRESETS, Preset, detect, get_preset, preset_names
from ._read import ReadKeywords, all_quarantined, read_events, read_numbered, unknown_statuses
from ._schema import CANONICAL, EVENT_TYPES, SCHEMA, STATUSES, normalise_header
from ._sources import LINE, ArrowFrame, EventsInput, EventsSource, Source, sources

__all__ = [
    "CANONICAL",
    "EVENT_TYPES",
    "LINE",
    "PRESETS",
    "QUARANTINE_SCHEMA",
    "SCHEMA",
    "STATUSES",
    "ArrowFrame",
    "Events",
    "EventsInput",
    "EventsSource",
    "Preset",
    "ReadKeywords",
    "Source",
    "all_quarantined",
    "careful_csv",
    "check_ignore_status",
    "check_status_map",
    "detect",
    "get_preset",
    "normalise_header",
    "normalise_status",
    "one_chunk",
    "preset_names",
    "read_events",
    "read_numbered",
    "sources",
    "unknown_statuses",
]
