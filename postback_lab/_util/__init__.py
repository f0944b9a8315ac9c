"""The bottom layer: small helpers every stage shares, importing no stage.

Durations, points in time (UTC), column converters, sync wrappers of async code, the
first line of an error, the dispatch key (one definition), the one DuckDB connection
helper, and the HTML helper behind every ``_repr_html_``.

Names load from their module on first use (PEP 562), so the command line's parser and
``postback_lab._errors`` users load no polars or DuckDB through this package.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from ._lazy import lazy_attributes

if TYPE_CHECKING:
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

#: name -> the module of this package that defines it
_LAZY = {
    **dict.fromkeys(
        (
            "EPOCH",
            "FORMATS",
            "UTC_US",
            "first_of",
            "formats_for",
            "is_naive",
            "number",
            "shapes",
            "text",
            "timestamp",
        ),
        "_convert",
    ),
    **dict.fromkeys(("connect", "query"), "_duckdb"),
    **dict.fromkeys(("format_duration", "parse_duration"), "_durations"),
    "render": "_html",
    **dict.fromkeys(
        ("ATTEMPT_KEY", "DISPATCH_ID", "DISPATCH_KEY", "KEY_TEXT", "dispatch_ids"), "_keys"
    ),
    **dict.fromkeys(("blocking", "run_sync"), "_sync"),
    **dict.fromkeys(("TIME_FORMAT", "cell", "shorten", "terminal_width", "text_table"), "_table"),
    **dict.fromkeys(
        (
            "FORMULA_START",
            "USERINFO",
            "counted",
            "csv_safe",
            "first_line",
            "masked_userinfo",
            "plan_line",
            "quote_ident",
        ),
        "_text",
    ),
    **dict.fromkeys(("When", "as_utc", "parse_when"), "_time"),
}


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
    "lazy_attributes",
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

if not TYPE_CHECKING:  # type checkers see the imports above, and flag a misspelt name
    __getattr__, __dir__ = lazy_attributes(__name__, _LAZY, __all__)
