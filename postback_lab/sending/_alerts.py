"""Alerts that reach people: a JSON message posted to a webhook when a host is paused,
when retries are exhausted, or when an audit finds groups delivered under a threshold.

The body is ``{"text": ...}`` plus structured fields: Slack incoming webhooks and
Microsoft Teams (workflows and the legacy connectors) show ``text``; a program reads
``event`` and ``items``. When a target has a secret (``{env:NAME}`` in the rules file's
``alerts:``), the request is signed like our postbacks (Standard Webhooks headers, see
``_sign``), so the receiver can check it came from us. A failed alert is reported, never
raised: an alert must not turn a send into an error."""

from __future__ import annotations

import json
import os
import uuid
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import httpx

from .._errors import InputError
from .._util import first_line
from ._sign import sign

#: (webhook URL, environment variable of its signing secret or None)
Target = tuple[str, str | None]


@dataclass(frozen=True)
class Alert:
    """One alert: ``event`` (``host.paused``, ``retries.exhausted``, ``audit.below``), a
    one-paragraph ``text`` naming the groups, rates and hosts, and ``items`` (one mapping
    per host or group)."""

    event: str
    text: str
    items: tuple[Mapping[str, Any], ...] = ()
    id: str = field(default_factory=lambda: "alert_" + uuid.uuid4().hex[:16])

    def body(self) -> str:
        """The JSON posted: Slack/Teams read ``text``; programs read the rest."""
        return json.dumps(
            {"text": self.text, "event": self.event, "id": self.id, "items": list(self.items)},
            default=str,
        )

    def __str__(self) -> str:
        return self.text


def targets_of(urls: Sequence[str] | None, configured: Sequence[Target] = ()) -> tuple[Target, ...]:
    """``--notify URL`` targets (unsigned) after those of the rules file; a URL that is not
    http(s) is an InputError."""
    out = list(configured)
    for url in urls or ():
        if not url.startswith(("http://", "https://")):
            raise InputError(f"--notify {url!r}: expected an http(s) webhook URL")
        out.append((url, None))
    return tuple(out)


def post_alert(
    alert: Alert,
    targets: Sequence[Target],
    *,
    environ: Mapping[str, str] | None = None,
    transport: httpx.BaseTransport | None = None,
    timeout: float = 10.0,
) -> list[str]:
    """Post ``alert`` to every target; returns one problem line per target that did not
    take it (a non-2xx answer, no connection, a missing secret)."""
    env = os.environ if environ is None else environ
    body = alert.body()
    problems = []
    with httpx.Client(transport=transport, timeout=timeout) as client:
        for url, secret in targets:
            headers = {"content-type": "application/json"}
            if secret is not None:
                if not env.get(secret):
                    problems.append(f"alert to {url} not sent: ${secret} (its secret) is not set")
                    continue
                try:
                    headers.update(sign(env[secret], alert.id, body))
                except ValueError as exc:
                    problems.append(f"alert to {url} not sent: ${secret}: {exc}")
                    continue
            try:
                answer = client.post(url, content=body, headers=headers)
            except httpx.HTTPError as exc:
                problems.append(f"alert to {url} failed: {first_line(exc) or type(exc).__name__}")
                continue
            if not answer.is_success:
                problems.append(f"alert to {url} failed: HTTP {answer.status_code}")
    return problems


def host_paused_alert(paused: Mapping[str, tuple[str, int]]) -> Alert:
    """``host.paused``: the hosts a run paused, why and after how many failed attempts."""
    names = ", ".join(sorted(paused))
    lines = [f"{h}: {why}" for h, (why, _) in sorted(paused.items())]
    return Alert(
        "host.paused",
        f"postback-lab paused {len(paused)} host(s): {names}. "
        + "; ".join(lines)
        + ". Their postbacks wait (logged 'paused'); a probe after the cool-down or "
        "'postback-lab hosts resume HOST' resumes them.",
        tuple({"host": h, "reason": why, "failures": n} for h, (why, n) in sorted(paused.items())),
    )


def exhausted_alert(exhausted: Mapping[tuple[str, str], int]) -> Alert:
    """``retries.exhausted``: postbacks that ended failed with no retry left, per rule and
    host."""
    total = sum(exhausted.values())
    parts = [f"{r} @ {h}: {n:,}" for (r, h), n in sorted(exhausted.items())]
    return Alert(
        "retries.exhausted",
        f"postback-lab: {total:,} postback(s) failed with no retry left ("
        + "; ".join(parts)
        + "). 'postback-lab backfill' sends them again once the partner is fixed.",
        tuple({"rule": r, "host": h, "postbacks": n} for (r, h), n in sorted(exhausted.items())),
    )
