"""The one module that imports httpx: a transport per host, and each request's outcome.

Requests are ``httpx.Request`` objects handed straight to an httpx transport: the
``AsyncClient`` layer above it (redirects, cookies, auth, default headers) does nothing a
postback needs and halved the request rate (benchmarks/bench_send.py). httpx errors are
translated here into an ``Outcome`` (a failed attempt is a log row, not an exception).
Redirects are never followed; only the first KiB of a body is read.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from typing import Literal

import httpx

from .._version import __version__

BODY_CAP = 1024
USER_AGENT = f"postback-lab/{__version__}"
DEFAULT_TIMEOUT = (5.0, 15.0)  # connect, total


@dataclass(frozen=True)
class Outcome:
    """What one attempt produced."""

    outcome: str  # delivered | failed | timeout | connection_error | cancelled | dry_run
    status_code: int | None
    latency_ms: float | None
    error: str | None
    response_body: str | None
    retry_after: str | None = None

    @property
    def retryable(self) -> bool:
        """Timeouts, connection errors, 408, 429 and 5xx are worth another try."""
        if self.outcome in ("timeout", "connection_error"):
            return True
        code = self.status_code
        return code is not None and (code in (408, 429) or code >= 500)


#: the connection engines a send can use: httpx's API over aiohttp's connections (the
#: default: 2.3x the requests per second of httpcore here, see benchmarks/bench_send.py)
#: or httpx's own connection pool
Engine = Literal["aiohttp", "httpx"]
ENGINES: tuple[Engine, ...] = ("aiohttp", "httpx")


def make_transport(
    per_host: int, engine: Engine, transport: httpx.AsyncBaseTransport | None = None
) -> httpx.AsyncBaseTransport:
    """A transport (connection pool) for one host, ``per_host`` connections at most, on
    ``engine``. A given ``transport`` (e.g. ``httpx.MockTransport`` in tests) is used as
    it is."""
    if transport is not None:
        return transport
    limits = httpx.Limits(max_connections=per_host, max_keepalive_connections=per_host)
    if engine == "aiohttp":
        from httpx_aiohttp import AiohttpTransport

        pool: httpx.AsyncBaseTransport = AiohttpTransport(limits=limits, trust_env=False)
        return pool
    return httpx.AsyncHTTPTransport(limits=limits, trust_env=False)


async def fetch(
    transport: httpx.AsyncBaseTransport,
    method: str,
    url: str,
    headers: dict[str, str],
    body: str | None,
    timeout: float | None,
) -> Outcome:
    """Send one request and classify the result."""
    total = timeout or DEFAULT_TIMEOUT[1]
    t = httpx.Timeout(total, connect=min(DEFAULT_TIMEOUT[0], total))
    start = time.perf_counter()
    content = body.encode() if body is not None else None
    try:
        request = httpx.Request(
            method,
            url,
            headers={"User-Agent": USER_AGENT, "Accept": "*/*", **headers},
            content=content,
            extensions={"timeout": t.as_dict()},
        )
        resp = await transport.handle_async_request(request)
        try:
            head = bytearray()
            async for chunk in resp.aiter_bytes():
                head += chunk
                if len(head) >= BODY_CAP:
                    break
            latency = (time.perf_counter() - start) * 1000
            code = resp.status_code
            text = bytes(head[:BODY_CAP]).decode("utf-8", "replace")
            if 200 <= code < 300:
                return Outcome("delivered", code, latency, None, text)
            if 300 <= code < 400:
                where = resp.headers.get("location", "?")
                err = f"HTTP {code} redirect to {where} (redirects are not followed)"
            else:
                err = f"HTTP {code} {resp.reason_phrase}".strip()
            return Outcome("failed", code, latency, err, text, resp.headers.get("retry-after"))
        finally:
            await resp.aclose()
    except httpx.TimeoutException as exc:
        if _not_really_a_timeout(exc):
            return Outcome("connection_error", None, _ms(start), _describe(exc), None)
        return Outcome(
            "timeout", None, _ms(start), f"{type(exc).__name__}: no answer within {total:g}s", None
        )
    except httpx.TransportError as exc:
        return Outcome(
            "connection_error",
            None,
            _ms(start),
            f"{type(exc).__name__}: {exc}" if str(exc) else type(exc).__name__,
            None,
        )


def _not_really_a_timeout(exc: BaseException) -> bool:
    """httpx-aiohttp maps every aiohttp connection error (a reset, a server that hung up)
    to ``ConnectTimeout``; its cause tells the two apart."""
    cause = exc.__cause__
    return (
        cause is not None
        and not isinstance(cause, TimeoutError)
        and "Timeout" not in type(cause).__name__
    )


def _describe(exc: BaseException) -> str:
    cause = exc.__cause__ or exc
    return f"{type(cause).__name__}: {cause}" if str(cause) else type(cause).__name__


def _ms(start: float) -> float:
    return (time.perf_counter() - start) * 1000
