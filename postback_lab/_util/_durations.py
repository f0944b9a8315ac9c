"""Durations as users write them (``90``, ``'2m'``, ``'1h30m'``, ``'1.5d'``) and back."""

from __future__ import annotations

import re
from datetime import timedelta
from decimal import Decimal

_DURATION = re.compile(r"(\d+(?:\.\d+)?)\s*([smhd])")
_SECONDS = re.compile(r"\d+(?:\.\d+)?")  # a number alone: seconds, as an int or float is
_UNITS = {"s": 1, "m": 60, "h": 3600, "d": 86400}


def parse_duration(value: object) -> timedelta:
    """``90``, ``'90'``, ``'90s'``, ``'2m'``, ``'1h30m'``, ``'1.5d'`` -> timedelta (a number
    without a unit, written as text or not, is seconds); ValueError otherwise."""
    if isinstance(value, bool):
        raise ValueError(value)
    if isinstance(value, (int, float)):
        if value < 0:
            raise ValueError(value)
        return timedelta(seconds=value)
    if isinstance(value, timedelta):
        if value < timedelta(0):
            raise ValueError(value)
        return value
    text = str(value).strip().lower().replace(" ", "")
    if _SECONDS.fullmatch(text):
        return timedelta(seconds=float(text))
    if not text or _DURATION.sub("", text) != "":
        raise ValueError(value)
    return timedelta(seconds=sum(float(n) * _UNITS[u] for n, u in _DURATION.findall(text)))


def format_duration(delta: timedelta) -> str:
    """The shortest text ``parse_duration`` reads back exactly: ``2m``, ``1h``, ``1.5s``."""
    seconds = Decimal(delta.days * 86400 + delta.seconds) + Decimal(delta.microseconds) / 10**6
    for unit in ("d", "h", "m"):
        size = _UNITS[unit]
        if seconds and seconds % size == 0:
            return f"{seconds // size}{unit}"
    text = format(seconds.normalize(), "f")
    return f"{text}s"
