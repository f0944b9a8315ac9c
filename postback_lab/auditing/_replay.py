"""Targeted replay: which postbacks of a backfill window to send, by rule, publisher,
offer, host and the status code of their last attempt (``5xx``, ``429``), and the
deliberate re-send of delivered ones.

A delivered postback is re-sent only when the caller asks with ``resend_delivered=N``
(N: how many they expect to re-send, checked against how many match, so a filter typo
never re-sends the whole log) and a ``reason``; both are kept on the run in the log."""

from __future__ import annotations

import re
from collections.abc import Iterable
from dataclasses import dataclass

import polars as pl

from .._errors import InputError


def _values(given: Iterable[object] | str | int | None) -> tuple[str, ...]:
    if given is None:
        return ()
    if isinstance(given, (str, int)):
        given = [given]
    out: list[str] = []
    for v in given:
        out += [p.strip() for p in str(v).split(",") if p.strip()]
    return tuple(out)


def status_ranges(codes: Iterable[object] | str | int | None) -> tuple[tuple[int, int], ...]:
    """``5xx``, ``4xx``, ``503``, ``500-504`` as inclusive ranges; an InputError names a
    code that is none of these."""
    out = []
    for text in _values(codes):
        t = text.lower()
        if m := re.fullmatch(r"([1-5])xx", t):
            lo = int(m.group(1)) * 100
            out.append((lo, lo + 99))
        elif m := re.fullmatch(r"(\d{3})(?:-(\d{3}))?", t):
            lo, hi = int(m.group(1)), int(m.group(2) or m.group(1))
            if hi < lo:
                raise InputError(f"--status-code {text!r}: the range ends before it starts")
            out.append((lo, hi))
        else:
            raise InputError(
                f"--status-code {text!r}: write a status code (503), a class (5xx) or a "
                "range (500-504)"
            )
    return tuple(out)


@dataclass(frozen=True)
class Targets:
    """What a backfill may send: each part empty means any. ``status_code`` ranges match
    a dispatch's last status code as reconcile reports it (the partner's last real answer;
    a dispatch never tried, or whose last attempt got no answer, has none, so it is left
    out when a status code is asked for)."""

    rule: tuple[str, ...] = ()
    publisher: tuple[str, ...] = ()
    offer: tuple[str, ...] = ()
    host: tuple[str, ...] = ()
    status_code: tuple[tuple[int, int], ...] = ()

    @classmethod
    def of(
        cls,
        *,
        rule: Iterable[object] | str | None = None,
        publisher: Iterable[object] | str | int | None = None,
        offer: Iterable[object] | str | int | None = None,
        host: Iterable[object] | str | None = None,
        status_code: Iterable[object] | str | int | None = None,
    ) -> Targets:
        """From loose values: one value, a list, or comma-separated text each."""
        return cls(
            _values(rule),
            _values(publisher),
            _values(offer),
            _values(host),
            status_ranges(status_code),
        )

    @property
    def narrowed(self) -> bool:
        return any((self.rule, self.publisher, self.offer, self.host, self.status_code))

    def describe(self) -> str:
        """``rule=A, host=h`` — the filters given, for messages."""
        parts = [
            f"{name}={','.join(values)}"
            for name, values in (
                ("rule", self.rule),
                ("publisher", self.publisher),
                ("offer", self.offer),
                ("host", self.host),
            )
            if values
        ]
        if self.status_code:
            codes = [f"{a}" if a == b else f"{a}-{b}" for a, b in self.status_code]
            parts.append("status_code=" + ",".join(codes))
        return ", ".join(parts) or "no filter"

    def plan_mask(self, frame: pl.DataFrame) -> pl.Series:
        """The plan rows the rule, publisher, offer and host filters keep."""
        cond = pl.lit(True)
        for col, values in (
            ("rule", self.rule),
            ("publisher_id", self.publisher),
            ("offer_id", self.offer),
            ("host", self.host),
        ):
            if values:
                cond = cond & pl.col(col).is_in(list(values))
        return frame.select(cond.alias("keep"))["keep"]

    def code_mask(self, last_status_code: pl.Series) -> pl.Series:
        """Which of the given last status codes (reconcile's ``last_status_code`` of each
        plan row: the partner's last real answer, see ``LAST_STATUS_CODE``) answered one
        of ``status_code``; all True without a status-code filter. Taking reconcile's own
        column keeps the two agreeing on what a dispatch's last answer was."""
        if not self.status_code:
            return pl.Series("keep", [True] * last_status_code.len(), dtype=pl.Boolean)
        keep = pl.lit(False)
        for lo, hi in self.status_code:
            keep = keep | pl.col("code").is_between(lo, hi)
        frame = pl.DataFrame({"code": last_status_code})
        return frame.select(keep.fill_null(False).alias("keep"))["keep"]


def check_resend(matched: int, expected: int | None, reason: str | None) -> None:
    """A re-send of delivered postbacks goes only with a reason and the exact count the
    operator expects (shown by a dry run first); else one InputError says what to do."""
    if expected is None:
        if reason is not None:
            raise InputError(
                "--reason goes with --resend-delivered N: a reason alone re-sends nothing"
            )
        return
    if not reason or not reason.strip():
        raise InputError(
            "--resend-delivered needs --reason TEXT: why delivered postbacks go again (kept "
            "on the run in the log)"
        )
    if expected < 0:
        raise InputError(f"--resend-delivered {expected}: give the number of postbacks expected")
    if matched != expected:
        raise InputError(
            f"--resend-delivered {expected}: {matched:,} delivered postbacks match the "
            f"filters, not {expected:,}; nothing was sent. Check the filters (a dry run "
            f"shows them), then pass --resend-delivered {matched}"
        )
