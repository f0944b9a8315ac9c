"""A rule's ``success`` key (what answer counts as delivered), validated here and carried
in the plan as JSON."""

from __future__ import annotations

import json
import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

#: ``bad(field, message)`` records one problem of the rule being validated
Report = Callable[[str, str], None]


@dataclass(frozen=True)
class Success:
    """An attempt is delivered when its status is in ``status`` (None: any 2xx) and, with
    ``body_matches``, that regular expression is found in the first KiB of the answer."""

    status: tuple[int, ...] | None = None
    body_matches: str | None = None

    def to_json(self) -> str:
        return json.dumps({"status": self.status, "body_matches": self.body_matches})

    def to_dict(self) -> dict[str, Any]:
        out: dict[str, Any] = {}
        if self.status is not None:
            out["status"] = list(self.status)
        if self.body_matches is not None:
            out["body_matches"] = self.body_matches
        return out


def success_field(value: Any, bad: Report) -> Success | None:
    """``success: {status: [200, 204], body_matches: "regex"}`` (either key, or both)."""
    if not isinstance(value, Mapping) or not value:
        bad("success", f"expected a mapping with status and/or body_matches, got {value!r}")
        return None
    for key in value:
        if key not in ("status", "body_matches"):
            bad(f"success.{key}", "unknown key (valid: status, body_matches)")
    status = None
    if "status" in value:
        raw = value["status"]
        codes = raw if isinstance(raw, list) else [raw]
        good = [
            c for c in codes if isinstance(c, int) and not isinstance(c, bool) and 100 <= c <= 599
        ]
        if not codes or len(good) != len(codes):
            bad("success.status", f"expected HTTP status codes (100-599), got {raw!r}")
        status = tuple(good) or None
    pattern = None
    if "body_matches" in value:
        pattern = value["body_matches"]
        if not isinstance(pattern, str) or not pattern:
            bad("success.body_matches", f"expected a regular expression, got {pattern!r}")
            pattern = None
        else:
            try:
                re.compile(pattern)
            except re.error as exc:
                bad("success.body_matches", f"not a valid regular expression ({exc})")
                pattern = None
    return Success(status, pattern)
