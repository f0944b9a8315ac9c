"""The top-level ``statuses:`` of a rules file: your own status spellings and the statuses
whose rows are left out, kept with the rules so every command that reads events with that
file reads them the same way (the command line's ``--status-map``/``--ignore-status``
win)::

    statuses:
      map: {sale: approved, trash: rejected, rebill: approved}
      ignore: [ping, test]
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from .._errors import did_you_mean
from ..events import STATUSES
from ._yaml import as_written

KEYS = ("map", "ignore")


@dataclass(frozen=True)
class StatusRules:
    """``pairs``: (your status, ours) in file order, lower case; ``ignore_status``: the
    statuses whose rows are left out and counted. Pass them to ``read_events`` as
    ``status_map=rules.statuses.status_map, ignore_status=rules.statuses.ignore_status``."""

    pairs: tuple[tuple[str, str], ...] = ()
    ignore_status: tuple[str, ...] = ()

    @property
    def status_map(self) -> dict[str, str]:
        """Your status -> approved | rejected | pending."""
        return dict(self.pairs)

    def __bool__(self) -> bool:
        return bool(self.pairs or self.ignore_status)

    def overridden(
        self, status_map: Mapping[str, str] | None, ignore_status: Sequence[str] | None
    ) -> StatusRules:
        """These with the command line's on top: a status the flags map or ignore is taken
        from the flags (a file's ``ignore: [test]`` gives way to ``--status-map
        test=approved``, its ``map`` to ``--ignore-status``); the rest of the file stays.
        The flags' values are checked by the reader, as without a file."""
        flags_map = {_key(k): str(v) for k, v in (status_map or {}).items()}
        flags_ignore = tuple(_key(s) for s in ignore_status or () if _key(s))
        pairs = {k: v for k, v in self.pairs if k not in flags_ignore}
        pairs.update(flags_map)
        ignore = [s for s in self.ignore_status if s not in flags_map]
        ignore += [s for s in flags_ignore if s not in ignore]
        return StatusRules(tuple(pairs.items()), tuple(ignore))


def _key(status: Any) -> str:
    return as_written(status).strip().lower()


def status_rules(value: Any, source: str) -> tuple[StatusRules, list[str]]:
    """The ``statuses:`` mapping of a rules file and its problems, each naming the file
    and the field (``statuses.map``, ``statuses.ignore``)."""
    problems: list[str] = []

    def bad(field: str, msg: str) -> None:
        problems.append(f"{source}: field {field!r}: {msg}")

    if value is None:
        return StatusRules(), problems
    if not isinstance(value, Mapping):
        bad("statuses", "expected a mapping like {map: {sale: approved}, ignore: [ping, test]}")
        return StatusRules(), problems
    for key in value:
        if key not in KEYS:
            bad(f"statuses.{key}", f"unknown key{did_you_mean(str(key), KEYS)}")
    pairs: dict[str, str] = {}
    raw_map = value.get("map")
    if raw_map is not None and not isinstance(raw_map, Mapping):
        bad("statuses.map", f"expected a mapping of your status to ours, got {raw_map!r}")
    elif raw_map is not None:
        for src, dst in raw_map.items():
            key = _key(src)
            to = _key(dst) if isinstance(dst, str) else ""
            if not key:
                bad("statuses.map", f"{src!r}: name the status to map")
            elif to not in STATUSES:
                bad(
                    f"statuses.map.{key}",
                    f"{dst!r} is not one of our statuses{did_you_mean(str(dst), STATUSES)}",
                )
            else:
                pairs[key] = to
    ignore: list[str] = []
    raw_ignore = value.get("ignore")
    if isinstance(raw_ignore, str):
        raw_ignore = [raw_ignore]
    if raw_ignore is not None and not isinstance(raw_ignore, list):
        bad("statuses.ignore", f"expected a list of statuses like [ping, test], got {raw_ignore!r}")
    elif raw_ignore is not None:
        for s in raw_ignore:
            key = _key(s) if isinstance(s, str | int) else ""
            if not key:
                bad("statuses.ignore", f"expected status names, got {s!r}")
            elif key in pairs:
                bad(
                    "statuses.ignore",
                    f"{key!r} is also mapped (statuses.map.{key}); a status is mapped or "
                    "ignored, not both",
                )
            elif key not in ignore:
                ignore.append(key)
    return StatusRules(tuple(pairs.items()), tuple(ignore)), problems
