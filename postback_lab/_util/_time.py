"""Points in time as users give them (``since``/``until``), always UTC."""

from __future__ import annotations

from datetime import UTC, date, datetime

import polars as pl

from .._errors import InputError
from ._convert import timestamp

When = datetime | date | str | None


def parse_when(value: When, *, name: str = "time") -> datetime | None:
    """A ``since``/``until`` value as an aware UTC datetime: a datetime (naive is UTC), a
    date (its midnight UTC) or text in any layout the events reader knows; None stays None.
    Anything else is an InputError naming ``name``."""
    if value is None:
        return None
    if isinstance(value, datetime):
        return value.astimezone(UTC) if value.tzinfo else value.replace(tzinfo=UTC)
    if isinstance(value, date):
        return datetime(value.year, value.month, value.day, tzinfo=UTC)
    parsed = pl.select(timestamp(pl.lit(str(value)), pl.String())).item()
    if not isinstance(parsed, datetime):
        raise InputError(
            f"{name}={value!r} is not a date or time; write e.g. 2026-11-01 or 2026-11-01T12:00:00Z"
        )
    return parsed


def as_utc(frame: pl.DataFrame, *, naive: bool = True) -> pl.DataFrame:
    """``frame`` with its zoned datetime columns in the zone named ``UTC`` (DuckDB says
    ``Etc/UTC``) and, with ``naive``, its naive ones taken as UTC (the audit's buckets)."""
    return frame.with_columns(
        pl.col(c).dt.replace_time_zone("UTC")
        if dt.time_zone is None
        else pl.col(c).dt.convert_time_zone("UTC")
        for c, dt in frame.schema.items()
        if isinstance(dt, pl.Datetime)
        and dt.time_zone != "UTC"
        and (naive or dt.time_zone is not None)
    )
