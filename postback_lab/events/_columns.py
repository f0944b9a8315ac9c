"""Which source column feeds each canonical column: an explicit mapping, then aliases."""

from __future__ import annotations

import difflib
from collections.abc import Mapping

from .._errors import EventsError, closest
from ._presets import Preset
from ._schema import ALIASES, REQUIRED, SCHEMA, normalise_header


def resolve_columns(
    label: str,
    found: list[str],
    explicit: Mapping[str, str],
    preset: Preset | None = None,
) -> tuple[dict[str, str], dict[str, str], dict[str, list[str]]]:
    """Map canonical column -> source column: the explicit mapping first, then the
    platform preset's headers, then the common aliases; and extra columns to rename
    (``{"Conversion IP": "ip"}``), and for columns a preset can fill from several
    headers, the further headers to fall back on. A missing required column is an
    EventsError listing the columns found and the closest."""
    mapping: dict[str, str] = {}
    renames: dict[str, str] = {}
    for key, value in explicit.items():
        if key in SCHEMA and value in found:
            mapping[key] = value
        elif value in SCHEMA and key in found:
            mapping[value] = key
        elif key in found:
            renames[key] = value  # an extra column under a name of the user's choice
        else:
            src = value if key in SCHEMA else key
            near = closest(src, found)
            raise EventsError(
                f"{label}: rename= names {src!r}, which the source does not have"
                + (f" (closest: {near!r})" if near else "")
                + f"; columns found: {', '.join(found)}"
            )
    fallbacks: dict[str, list[str]] = {}
    if preset is not None:
        for target, srcs in preset.sources(found).items():
            if target not in mapping:
                mapping[target] = srcs[0]
                fallbacks[target] = srcs[1:]
    by_norm: dict[str, str] = {}
    for name in found:
        by_norm.setdefault(normalise_header(name), name)
    used = set(mapping.values()) | set(renames)
    for canonical, aliases in ALIASES.items():
        if canonical in mapping:
            continue
        for alias in aliases:
            column = by_norm.get(alias)
            if column is not None and column not in used:
                mapping[canonical] = column
                used.add(column)
                break
    missing = [req for req in REQUIRED if req not in mapping]
    if missing:
        if "status" not in mapping and (preset is None or preset.default_status is None):
            missing.append("status")  # named too, so one error lists every column to map
        free = [f for f in found if f not in used]
        parts = []
        for req in missing:
            close = near_headers(req, free)
            parts.append(
                f"{req!r}"
                + (
                    f" (close: {', '.join(repr(n) for n in close)})"
                    if close
                    else " (no close header)"
                )
            )
        first = next((n for req in missing for n in near_headers(req, free)), None)
        example = (
            f"; map a header with rename={{{first!r}: {missing[0]!r}}}, on the command line "
            f"--columns '{first}={missing[0]}'"
            if first
            else f"; map a header with rename={{'Header': {missing[0]!r}}}"
        )
        raise EventsError(
            f"{label}: no column for {', '.join(parts)}; columns found: "
            f"{', '.join(found) or '(none)'}{example}"
        )
    return mapping, renames, {k: v for k, v in fallbacks.items() if v}


def near_headers(canonical: str, headers: list[str], n: int = 3) -> list[str]:
    """Up to ``n`` headers that look like ``canonical`` or one of its aliases, closest
    first (``'Txn Ref'`` for ``transaction_id``, ``'Event Date'`` for ``occurred_at``)."""
    names = [canonical, *ALIASES.get(canonical, ())]
    scored: dict[str, float] = {}
    for h in headers:
        key = normalise_header(h)
        best = max(difflib.SequenceMatcher(None, key, a).ratio() for a in names)
        words = set(key.split("_"))
        if any(set(a.split("_")) & words - {"id"} for a in names):
            best = max(best, 0.6)  # shares a word: 'Event Date' for 'date'
        if best >= 0.6:
            scored[h] = best
    return sorted(scored, key=lambda h: -scored[h])[:n]
