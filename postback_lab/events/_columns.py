"""Which source column feeds each canonical column: an explicit mapping, then aliases."""

from __future__ import annotations

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
                f"{label}: columns= names {src!r}, which the source does not have"
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
    for req in REQUIRED:
        if req not in mapping:
            free = [f for f in found if f not in used]
            near = closest(req, free) or next(
                (f for f in free if closest(normalise_header(f), ALIASES[req])), None
            )
            hint = (
                f"; closest: {near!r} (map it with columns={{{near!r}: {req!r}}}, on the "
                f"command line --columns '{near}={req}')"
                if near
                else ""
            )
            raise EventsError(
                f"{label}: required column {req!r} not found; columns found: "
                f"{', '.join(found) or '(none)'}{hint}"
            )
    return mapping, renames, {k: v for k, v in fallbacks.items() if v}
