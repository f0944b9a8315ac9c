"""How to read a source: the platform preset, explicit column mapping, CSV conventions,
date layouts, the time zone of naive times and the user's own status spellings — one
value, validated once."""

from __future__ import annotations

import zoneinfo
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field

from .._errors import EventsError
from ._presets import Preset, get_preset, preset_names
from ._schema import EVENT_TYPE_ALIASES, EVENT_TYPES, STATUSES


@dataclass(frozen=True)
class ReadOptions:
    """``preset``: a platform preset name, ``"auto"`` or None; ``rename``: source column ->
    canonical (or canonical -> source, or source -> a new name for an extra column);
    ``status_map``: the user's status spellings -> approved | rejected | pending
    (``sale`` -> ``approved``, winning over the preset's); ``ignore_status``: statuses
    whose rows are left out and counted (``ping``, ``test``)."""

    preset: str | None = None
    rename: Mapping[str, str] = field(default_factory=dict)
    event_type: str | None = None
    encoding: str = "utf-8"
    sep: str | None = None
    date_format: str | None = None
    timezone: str = "UTC"
    decimal_comma: bool | None = None
    status_map: Mapping[str, str] = field(default_factory=dict)
    ignore_status: tuple[str, ...] = ()

    def __post_init__(self) -> None:
        object.__setattr__(self, "status_map", status_map(self.status_map))
        object.__setattr__(self, "ignore_status", ignore_status(self.ignore_status))
        if self.event_type is not None:
            forced = EVENT_TYPE_ALIASES.get(self.event_type.strip().lower())
            if forced is None:
                raise EventsError(
                    f"event_type={self.event_type!r} is not one of {', '.join(EVENT_TYPES)}"
                )
            object.__setattr__(self, "event_type", forced)
        if self.preset is not None:
            name = self.preset.strip().lower()
            if name not in preset_names():
                raise EventsError(
                    f"preset={self.preset!r} is not a known platform; valid: "
                    f"{', '.join(preset_names())}"
                )
            object.__setattr__(self, "preset", name)
        try:
            zoneinfo.ZoneInfo(self.timezone)
        except (zoneinfo.ZoneInfoNotFoundError, ValueError):
            raise EventsError(
                f"timezone={self.timezone!r} is not a time zone; write e.g. UTC, "
                "Europe/Berlin or America/New_York"
            ) from None
        if self.sep is not None and len(self.sep) != 1:
            raise EventsError(f"sep={self.sep!r}: a CSV separator is one character, like ';'")

    def preset_for(self, headers: list[str]) -> tuple[Preset | None, str | None]:
        """The preset for a source with these headers, and a note when it was guessed."""
        if self.preset is None:
            return None, None
        if self.preset != "auto":
            return get_preset(self.preset), None
        from ._presets import detect

        found, hits = detect(headers)
        if found is None:
            return None, "preset=auto: no platform's headers recognised; read with common aliases"
        return found, f"preset=auto: read as {found.title} ({hits} characteristic headers)"


def status_map(mapping: Mapping[str, str] | None) -> dict[str, str]:
    """A user's status map, keys lower case and stripped; an EventsError names a value
    that is not approved, rejected or pending."""
    out: dict[str, str] = {}
    for src, dst in (mapping or {}).items():
        to = str(dst).strip().lower()
        if to not in STATUSES:
            raise EventsError(
                f"status_map {src}={dst}: a status maps to one of {', '.join(STATUSES)}"
            )
        key = str(src).strip().lower()
        if not key:
            raise EventsError(f"status_map ={dst}: name the status to map")
        out[key] = to
    return out


def ignore_status(values: str | Sequence[str] | None) -> tuple[str, ...]:
    """Statuses to leave out, lower case and stripped (a string: one status)."""
    if values is None:
        return ()
    items = [values] if isinstance(values, str) else list(values)
    return tuple(dict.fromkeys(v.strip().lower() for v in items if v.strip()))
