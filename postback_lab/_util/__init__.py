"""The bottom layer: small helpers every stage shares, importing no stage.

Durations, points in time (UTC), column converters, sync wrappers of async code, the
first line of an error, the dispatch key (one definition), the one DuckDB connection
helper, and the HTML helper behind every ``_repr_html_``.
"""

from ._convert import (
    EPOCH,
    FORMATS,
    UTC_US,
    first_of,
    formats_for,
    is_naive,
    number,
    shapes,
    text,
    timestamp,
)
from ._duckdb import connect, query
from ._durations import format_duration, parse_duration
from ._html import render
from ._keys import ATTEMPT_KEY, DISPATCH_ID, DISPATCH_KEY, KEY_TEXT, dispatch_ids
from ._sync import blocking, run_sync
from ._table import TIME_FORMAT, cell, shorten, terminal_width, text_table
from ._text import (
    FORMULA_START,
    USERINFO,
    counted,
    csv_safe,
    first_line,
    masked_userinfo,
    plan_line,
    quote_ident,
)
from ._time import When, as_utc, parse_when

__all__ = [
    "ATTEMPT_KEY",
    "DISPATCH_ID",
    "DISPATCH_KEY",
    "EPOCH",
    "FORMATS",
    "FORMULA_START",
    "KEY_TEXT",
    "TIME_FORMAT",
    "USERINFO",
    "UTC_US",
    "When",
    "as_utc",
    "blocking",
    "cell",
    "connect",
    "counted",
    "csv_safe",
    "dispatch_ids",
    "first_line",
    "first_of",
    "format_duration",
    "formats_for",
    "is_naive",
    "masked_userinfo",
    "number",
    "parse_duration",
    "parse_when",
    "plan_line",
    "query",
    "quote_ident",
    "render",
    "run_sync",
    "shapes",
    "shorten",
    "terminal_width",
    "text",
    "text_table",
    "timestamp",
]
