"""A rule's ``success`` check applied to an answer: what counts as delivered when the
partner answers (status codes, and a pattern its answer must contain)."""

from __future__ import annotations

import dataclasses
import functools
import json
import re

from ._http import Outcome


@functools.lru_cache(maxsize=64)
def _success(spec: str) -> tuple[frozenset[int] | None, re.Pattern[str] | None]:
    data = json.loads(spec)
    codes = frozenset(data["status"]) if data.get("status") else None
    pattern = re.compile(data["body_matches"]) if data.get("body_matches") else None
    return codes, pattern


def judge(o: Outcome, spec: str | None) -> Outcome:
    """``o`` classified by the rule's success check (``spec``): an answer whose status is
    not a success, or whose first KiB does not match ``body_matches``, is ``failed`` with
    the reason; a 2xx that fails it is retried (the partner answered but did not accept),
    other codes follow the usual rules."""
    code = o.status_code
    if spec is None or code is None:
        return o
    codes, pattern = _success(spec)
    if not (200 <= code < 300 if codes is None else code in codes):
        if o.outcome != "delivered":
            return o
        listed = ", ".join(map(str, sorted(codes or ())))
        err = f"HTTP {code} is not a success for this rule (success.status: {listed})"
        return dataclasses.replace(o, outcome="failed", error=err, retry=True)
    if pattern is not None and pattern.search(o.response_body or "") is None:
        err = f"HTTP {code}, but the answer does not match success.body_matches {pattern.pattern!r}"
        return dataclasses.replace(
            o, outcome="failed", error=err, retry=True if 200 <= code < 300 else None
        )
    if o.outcome != "delivered":  # a listed code outside 2xx, e.g. 302
        return dataclasses.replace(o, outcome="delivered", error=None, retry_after=None)
    return o
