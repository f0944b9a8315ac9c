"""SendOptions: how a send runs, one frozen value built and validated once."""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import timedelta
from typing import Literal, TypeAlias

import httpx

from .._errors import InputError
from ._breaker import Breaker
from ._http import ENGINES, Engine
from ._limits import WALL_CLOCK, Clock
from ._retry import Retry


@dataclass(frozen=True)
class Replay:
    """A send's timing that replays the plan's timeline from now, ``speed`` times faster:
    at ``Replay(60)`` a postback due an hour after the plan's first one goes a minute after
    the send starts (a load test, a rehearsal against a staging receiver)."""

    speed: float

    def __post_init__(self) -> None:
        if not _positive(self.speed):
            raise InputError(f"Replay speed={self.speed!r} must be a number more than 0")


#: when a send fires each postback: ``"due"`` at its ``due_at`` (at once when that has
#: passed; the default), ``"now"`` everything at once, or ``Replay(speed)``
Timing: TypeAlias = Literal["due", "now"] | Replay
TIMINGS = ("due", "now")


@dataclass(frozen=True)
class SendOptions:
    """How a send or backfill runs. Invalid values are an InputError when it is built.

    - ``concurrency``: requests in flight at most; ``per_host``: at most per host;
      ``rate``: requests per second per host (None: unlimited).
    - ``retry``: the retry schedule of each run (see ``Retry``).
    - ``dry_run``: render and log ``dry_run`` rows, open no socket.
    - ``timing``: ``"due"`` (nothing fires before its ``due_at``), ``"now"`` (everything
      at once) or ``Replay(speed)`` (the plan's timeline, ``speed`` times faster from now).
    - ``max_duration``: retries that would fall later (seconds or a timedelta) are left
      failed for a later backfill.
    - ``progress``: a progress bar (terminal or notebook).
    - ``clock``, ``transport``, ``environ``: injectable for tests (a fake clock, an
      ``httpx`` transport, the environment ``{env:NAME}`` reads).
    - ``engine``: ``"aiohttp"`` (httpx API over aiohttp's connections, the fastest) or
      ``"httpx"`` (httpx's own pool).
    - ``allow_hosts``: patterns like ``*.example.com``; a plan with other hosts is refused.
    - ``deny_private``: hosts resolving to private, loopback, link-local or metadata
      addresses fail, unsent.
    - ``breaker``: when a host is paused for the rest of the run (see ``Breaker``; its
      remaining dispatches are logged ``paused``); ``Breaker.off()`` never pauses.
    - ``workers``: processes that send, each a shard of the plan's hosts with its own
      event loop, while this process writes the log. None (the default): one per core, at
      most one per host and one per 2,000 postbacks (a smaller plan is sent faster than
      a worker starts). ``concurrency`` is shared among them. More than one needs the
      default clock and transport (they cannot cross into another process).
    - ``rule_retry``: a retry schedule per rule name (a rule's ``retry:``), used instead of
      ``retry`` for that rule's dispatches; its ``within`` lets retries outlive the run.
    - ``host_breaker``: a breaker per host, used instead of ``breaker`` for that host.
    - ``notify``: alert webhooks, (URL, environment variable of a signing secret or None)
      pairs: a host paused and retries exhausted are posted there after the run.
    """

    concurrency: int = 64
    per_host: int = 8
    rate: float | None = None
    retry: Retry = field(default_factory=Retry)
    dry_run: bool = False
    timing: Timing = "due"
    max_duration: timedelta | float | None = None
    progress: bool = True
    clock: Clock = WALL_CLOCK
    transport: httpx.AsyncBaseTransport | None = field(default=None, compare=False)
    environ: Mapping[str, str] | None = field(default=None, repr=False)
    engine: Engine = "aiohttp"
    allow_hosts: Sequence[str] | None = None
    deny_private: bool = False
    breaker: Breaker = field(default_factory=Breaker)
    workers: int | None = None
    rule_retry: Mapping[str, Retry] | None = None
    host_breaker: Mapping[str, Breaker] | None = None
    notify: Sequence[tuple[str, str | None]] = ()

    def __post_init__(self) -> None:
        problems = []
        if not _count(self.concurrency):
            problems.append(f"concurrency={self.concurrency!r} must be a whole number >= 1")
        if not _count(self.per_host):
            problems.append(f"per_host={self.per_host!r} must be a whole number >= 1")
        if self.rate is not None and not _positive(self.rate):
            problems.append(f"rate={self.rate!r} must be a number more than 0 (or None)")
        if not isinstance(self.timing, Replay) and self.timing not in TIMINGS:
            problems.append(
                f"timing={self.timing!r} must be 'due', 'now' or Replay(speed) (e.g. Replay(60))"
            )
        if self.engine not in ENGINES:
            problems.append(
                f"engine={self.engine!r} is not one of {', '.join(repr(e) for e in ENGINES)}"
            )
        if not isinstance(self.retry, Retry):
            problems.append(f"retry={self.retry!r} must be a Retry (e.g. Retry.short())")
        if self.workers is not None and not _count(self.workers):
            problems.append(f"workers={self.workers!r} must be a whole number >= 1 (or None)")
        if not isinstance(self.breaker, Breaker):
            problems.append(f"breaker={self.breaker!r} must be a Breaker (e.g. Breaker.off())")
        if not isinstance(self.clock, Clock):
            problems.append(f"clock={self.clock!r} must be a Clock")
        window = self.max_duration
        if isinstance(window, (int, float)) and not isinstance(window, bool):
            window = timedelta(seconds=window) if math.isfinite(window) else None
        if self.max_duration is not None and (
            not isinstance(window, timedelta) or window < timedelta(0)
        ):
            problems.append(
                f"max_duration={self.max_duration!r} must be 0 or more seconds (or a timedelta)"
            )
        elif window is not None:
            object.__setattr__(self, "max_duration", window)
        for name, kind in (("rule_retry", Retry), ("host_breaker", Breaker)):
            given = getattr(self, name)
            if given is not None and not (
                isinstance(given, Mapping) and all(isinstance(v, kind) for v in given.values())
            ):
                problems.append(f"{name}={given!r} must map names to a {kind.__name__} each")
        if isinstance(self.notify, str) or not all(
            isinstance(t, (tuple, list))
            and len(t) == 2
            and isinstance(t[0], str)
            and t[0].startswith(("http://", "https://"))
            and (t[1] is None or isinstance(t[1], str))
            for t in self.notify
        ):
            problems.append(
                f"notify={self.notify!r} must be (webhook URL, secret variable or None) pairs"
            )
        else:
            object.__setattr__(self, "notify", tuple((t[0], t[1]) for t in self.notify))
        if isinstance(self.allow_hosts, str):
            problems.append(f"allow_hosts={self.allow_hosts!r} must be a list of host patterns")
        elif self.allow_hosts is not None:
            object.__setattr__(self, "allow_hosts", tuple(self.allow_hosts))
        if problems:
            raise InputError("; ".join(problems))

    def retry_of(self, rule: str) -> Retry:
        """The retry schedule of ``rule``'s dispatches."""
        return (self.rule_retry or {}).get(rule, self.retry)

    def breaker_of(self, host: str) -> Breaker:
        """The circuit breaker of ``host``."""
        return (self.host_breaker or {}).get(host, self.breaker)

    @property
    def fire_now(self) -> bool:
        """Everything fires at once (``timing="now"``), due or not."""
        return self.timing == "now"

    @property
    def replay_speed(self) -> float | None:
        """The replay speed of ``timing=Replay(speed)``, else None."""
        return self.timing.speed if isinstance(self.timing, Replay) else None

    @property
    def retry_window(self) -> timedelta | None:
        """``max_duration`` as a timedelta (None: retries are not cut off)."""
        w = self.max_duration
        return timedelta(seconds=w) if isinstance(w, (int, float)) else w


def _count(value: object) -> bool:
    return isinstance(value, int) and not isinstance(value, bool) and value >= 1


def _positive(value: object) -> bool:
    return (
        isinstance(value, (int, float))
        and not isinstance(value, bool)
        and math.isfinite(value)
        and value > 0
    )


#: the options of a send given nothing: each keyword of ``send`` defaults to its field here
DEFAULTS = SendOptions()
