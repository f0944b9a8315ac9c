"""Which source column feeds each canonical column: an explicit mapping, then aliases."""

from __future__ import annotations

from collections.abc import Mapping

from .._errors import EventsError, closest
from ._schema import ALIASES, REQUIRED, SCHEMA, normalise_header


def resolve_columns(label: str, found: list[str], explicit: Mapping[str, str]) -> dict[str, str]:
    """Map canonical column -> source column: explicit mapping first, then aliases. A
    missing required column is an EventsError listing the columns found and the closest."""
    mapping: dict[str, str] = {}
    for key, value in explicit.items():
        if key in SCHEMA and value in found:
            mapping[key] = value
        elif value in SCHEMA and key in found:
            mapping[value] = key
        else:
            col = key if key in SCHEMA else value
            src = value if key in SCHEMA else key
            raise EventsError(
                f"{label}: columns= maps {src!r} to {col!r} but the source has no column "
                f"{src!r}; columns found: {', '.join(found)}"
            )
    by_norm: dict[str, str] = {}
    for name in found:
        by_norm.setdefault(normalise_header(name), name)
    used = set(mapping.values())
    for canonical, aliases in ALIASES.items():
        if canonical in mapping:
            continue
        for alias in aliases:
            column = by_norm.get(alias)
            if column is not None and column not in used:
                mapping[canonical] = column
                used.add(column)
                break
    for req in REQUIRED:
        if req not in mapping:
            free = [f for f in found if f not in used]
            near = closest(req, free) or next(
                (f for f in free if closest(normalise_header(f), ALIASES[req])), None
            )
            hint = (
                f"; closest: {near!r} (map it with columns={{{near!r}: {req!r}}})" if near else ""
            )
            raise EventsError(
                f"{label}: required column {req!r} not found; columns found: "
                f"{', '.join(found) or '(none)'}{hint}"
            )
    return mapping
