"""The one module that talks HTTP: a transport per host, and each request's outcome.

Requests are ``httpx.Request`` objects handed straight to an httpx transport: the
``AsyncClient`` layer above it (redirects, cookies, auth, default headers) does nothing a
postback needs and halved the request rate (benchmarks/bench_send.py). The default
engine, ``AiohttpPool``, is a small httpx transport over aiohttp's connections that sends
the URL exactly as planned and never resends a request by itself. httpx errors are
translated here into an ``Outcome`` (a failed attempt is a log row, not an exception).
Redirects are never followed; only the first KiB of a body is read; the rule's timeout
bounds the whole attempt.
"""

from __future__ import annotations

import asyncio
import functools
import time
from collections.abc import AsyncIterator, Iterable
from dataclasses import dataclass
from typing import Literal

import aiohttp
import httpx
import yarl

from .._version import __version__

#: the log keeps the first KiB of an answer ...
BODY_CAP = 1024
#: ... of the first 8 KiB read, which secrets are masked in before the cut: a secret the
#: partner echoes across the 1 KiB mark never leaves its first characters in the log
READ_CAP = 8 * BODY_CAP
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
    retry: bool | None = None  # overrides the rule below (an answer that failed `success`)
    #: the answer's headers as ``Name: value`` lines, in the order they came
    response_headers: str | None = None

    @property
    def retryable(self) -> bool:
        """Timeouts, connection errors, 408, 429 and 5xx are worth another try."""
        if self.retry is not None:
            return self.retry
        if self.outcome in ("timeout", "connection_error"):
            return True
        code = self.status_code
        return code is not None and (code in (408, 429) or code >= 500)


#: the connection engines a send can use: httpx's API over aiohttp's connections (the
#: default: 2.3x the requests per second of httpcore here, see benchmarks/bench_send.py)
#: or httpx's own connection pool
Engine = Literal["aiohttp", "httpx"]
ENGINES: tuple[Engine, ...] = ("aiohttp", "httpx")


class AiohttpPool(httpx.AsyncBaseTransport):
    """An httpx transport over one aiohttp connection pool (``per_host`` connections).

    Unlike a plain aiohttp session it sends the URL's bytes as they are (no re-quoting:
    ``%26`` stays ``%26``) and never resends a request on its own (aiohttp retries an
    idempotent request once when a reused connection fails), so every request that goes
    out is one attempt in the log. aiohttp errors become httpx errors here."""

    def __init__(self, per_host: int) -> None:
        self.per_host = per_host
        self._session: aiohttp.ClientSession | None = None

    def _open(self) -> aiohttp.ClientSession:
        connector = aiohttp.TCPConnector(limit=self.per_host, limit_per_host=self.per_host)
        session = aiohttp.ClientSession(
            connector=connector,
            auto_decompress=False,
            trust_env=False,
            cookie_jar=aiohttp.DummyCookieJar(),
        )
        # the sender's schedule is the only one that retries (see the class docstring)
        session._retry_connection = False
        self._session = session
        return session

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        session = self._session or self._open()
        t = request.extensions.get("timeout", {})
        timeout = _timeout(t.get("connect"), t.get("read"))
        content = request.content or None
        # the URL as the sender wrote it (fetch), else as httpx holds it
        url = request.extensions.get("pbl_url") or str(request.url)
        try:
            resp = await session.request(
                request.method,
                yarl.URL(url, encoded=True),
                headers=[
                    (k.decode("latin-1"), v.decode("utf-8", "replace"))
                    for k, v in request.headers.raw
                ],
                data=content,
                allow_redirects=False,
                compress=False,
                timeout=timeout,
                skip_auto_headers=_SKIP,
            )
        except aiohttp.ClientError as exc:
            raise _httpx_error(exc, request) from exc
        except TimeoutError as exc:
            raise httpx.ConnectTimeout("no connection in time", request=request) from exc
        except ValueError as exc:  # yarl: a port out of range, a bad host
            raise httpx.InvalidURL(str(exc)) from exc
        return httpx.Response(
            resp.status,
            headers=resp.raw_headers,
            stream=_Body(resp, request),
            request=request,
            extensions={"reason_phrase": (resp.reason or "").encode("latin-1", "replace")},
        )

    async def exchange(
        self,
        method: str,
        url: yarl.URL,
        headers: dict[str, str],
        content: bytes | None,
        connect: float,
        read: float,
    ) -> _Answer:
        """One request sent straight over aiohttp (no httpx.Request/Response objects: the
        same bytes on the wire, a third less CPU per postback); errors are raised as the
        httpx errors ``handle_async_request`` would raise, so ``fetch`` classifies both
        paths alike."""
        session = self._session or self._open()
        try:
            resp = await session.request(
                method,
                url,
                headers=headers,
                data=content,
                allow_redirects=False,
                compress=False,
                timeout=_timeout(connect, read),
                skip_auto_headers=_SKIP,
            )
        except aiohttp.ClientError as exc:
            raise _httpx_error(exc, None) from exc
        except TimeoutError as exc:
            raise httpx.ConnectTimeout("no connection in time") from exc
        try:
            h = resp.headers
            if h.get("Content-Encoding", "identity").lower() != "identity":
                # httpx decodes compressed answers: read them through it
                stream = httpx.Response(resp.status, headers=resp.raw_headers, stream=_Body(resp))
                head = await _read_head(stream.aiter_bytes())
            else:
                head = await _read_head(_Body(resp).__aiter__())
            return _Answer(
                resp.status,
                resp.reason or "",
                h.get("Location"),
                h.get("Retry-After"),
                head,
                header_lines(resp.raw_headers),
            )
        finally:
            resp.release()

    async def aclose(self) -> None:
        if self._session is not None:
            await self._session.close()
            self._session = None


@dataclass(frozen=True, slots=True)
class _Answer:
    """What ``fetch`` needs of a response."""

    code: int
    reason: str
    location: str | None
    retry_after: str | None
    head: bytes  # the first READ_CAP bytes of the body (or fewer)
    headers: str  # the response headers as ``Name: value`` lines


def header_lines(raw: Iterable[tuple[bytes, bytes]]) -> str:
    """Response headers as the log keeps them: ``Name: value`` lines in the order they
    came (names as the partner wrote them), at most ``READ_CAP`` characters (secrets are
    masked and the text cut to a KiB later, as a body's)."""
    text = "\n".join(f"{k.decode('latin-1')}: {v.decode('utf-8', 'replace')}" for k, v in raw)
    return text[:READ_CAP]


async def _read_head(chunks: AsyncIterator[bytes]) -> bytes:
    head = bytearray()
    async for chunk in chunks:
        head += chunk
        if len(head) >= READ_CAP:
            break
    return bytes(head[:READ_CAP])


def stored_body(text: str | None) -> str | None:
    """The part of an answer the log keeps: its first KiB (``BODY_CAP`` bytes of UTF-8).
    Mask secrets first (see ``READ_CAP``)."""
    if text is None or len(text) <= BODY_CAP // 4:
        return text
    return text.encode("utf-8")[:BODY_CAP].decode("utf-8", "ignore")


_SKIP = frozenset({"Accept-Encoding", "Content-Type"})


@functools.lru_cache(maxsize=64)
def _timeout(connect: float | None, read: float | None) -> aiohttp.ClientTimeout:
    return aiohttp.ClientTimeout(total=None, sock_connect=connect, sock_read=read)


class _Body(httpx.AsyncByteStream):
    """An aiohttp response body as an httpx stream."""

    def __init__(self, resp: aiohttp.ClientResponse, request: httpx.Request | None = None) -> None:
        self._resp = resp
        self._request = request

    async def __aiter__(self) -> AsyncIterator[bytes]:
        try:
            async for chunk in self._resp.content.iter_any():
                yield chunk
        except aiohttp.ClientError as exc:
            raise _httpx_error(exc, self._request) from exc
        except TimeoutError as exc:
            raise httpx.ReadTimeout("no answer in time", request=self._request) from exc

    async def aclose(self) -> None:
        self._resp.release()


def _httpx_error(exc: aiohttp.ClientError, request: httpx.Request | None) -> httpx.TransportError:
    """The httpx error an aiohttp error stands for."""
    text = str(exc) or type(exc).__name__
    kind: type[httpx.TransportError]
    if isinstance(exc, aiohttp.ConnectionTimeoutError):
        kind = httpx.ConnectTimeout
    elif isinstance(exc, aiohttp.ServerTimeoutError):
        kind = httpx.ReadTimeout
    elif isinstance(exc, aiohttp.ClientConnectorError):
        kind = httpx.ConnectError
    elif isinstance(exc, aiohttp.InvalidURL):
        kind = httpx.UnsupportedProtocol
    elif isinstance(exc, aiohttp.ClientPayloadError):
        kind = httpx.ReadError
    elif isinstance(exc, (aiohttp.ServerDisconnectedError, aiohttp.ClientResponseError)):
        kind = httpx.RemoteProtocolError
    else:
        kind = httpx.NetworkError
    return kind(text, request=request)


def make_transport(
    per_host: int, engine: Engine, transport: httpx.AsyncBaseTransport | None = None
) -> httpx.AsyncBaseTransport:
    """A transport (connection pool) for one host, ``per_host`` connections at most, on
    ``engine``. A given ``transport`` (e.g. ``httpx.MockTransport`` in tests) is used as
    it is."""
    if transport is not None:
        return transport
    if engine == "aiohttp":
        return AiohttpPool(per_host)
    limits = httpx.Limits(max_connections=per_host, max_keepalive_connections=per_host)
    # retries=0: httpcore never resends by itself either
    return httpx.AsyncHTTPTransport(limits=limits, trust_env=False, retries=0)


async def fetch(
    transport: httpx.AsyncBaseTransport,
    method: str,
    url: str,
    headers: dict[str, str],
    body: str | None,
    timeout: float | None,
) -> Outcome:
    """Send one request and classify the result. ``timeout`` (the rule's) bounds the whole
    attempt, from connecting to the first KiB of the answer: a server that drips its answer
    slowly is a timeout, not a delivery."""
    total = timeout or DEFAULT_TIMEOUT[1]
    connect = min(DEFAULT_TIMEOUT[0], total)
    start = time.perf_counter()
    content = body.encode() if body is not None else None
    sent = {"User-Agent": USER_AGENT, "Accept": "*/*", **headers}
    try:
        direct = _direct_url(transport, url, sent)
        async with asyncio.timeout(total):
            if direct is not None:
                assert isinstance(transport, AiohttpPool)
                answer = await transport.exchange(method, direct, sent, content, connect, total)
            else:
                answer = await _exchange(transport, method, url, sent, content, connect, total)
    except TimeoutError:
        return Outcome("timeout", None, _ms(start), f"no complete answer within {total:g}s", None)
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
    except (httpx.InvalidURL, ValueError) as exc:  # UnicodeError too
        return Outcome("failed", None, _ms(start), f"invalid request: {exc}", None)
    latency = _ms(start)
    code = answer.code
    text = answer.head.decode("utf-8", "replace")
    if 200 <= code < 300:
        return Outcome("delivered", code, latency, None, text, response_headers=answer.headers)
    if 300 <= code < 400:
        err = f"HTTP {code} redirect to {answer.location or '?'} (redirects are not followed)"
    else:
        err = f"HTTP {code} {answer.reason}".strip()
    return Outcome(
        "failed", code, latency, err, text, answer.retry_after, response_headers=answer.headers
    )


def _direct_url(
    transport: httpx.AsyncBaseTransport, url: str, headers: dict[str, str]
) -> yarl.URL | None:
    """The URL to hand straight to the default engine, or None: another transport, or a
    request the httpx path must check and encode (non-ASCII, odd ports or header names)."""
    if type(transport) is not AiohttpPool or not url.isascii():
        return None
    if not all(k.isascii() for k in headers):
        return None
    try:
        parsed = yarl.URL(url, encoded=True)
        port = parsed.explicit_port
    except (ValueError, TypeError):
        return None
    if parsed.scheme not in ("http", "https") or not parsed.host:
        return None
    if port is not None and not 0 < port < 65536:
        return None
    return parsed


async def _exchange(
    transport: httpx.AsyncBaseTransport,
    method: str,
    url: str,
    headers: dict[str, str],
    content: bytes | None,
    connect: float,
    total: float,
) -> _Answer:
    """One request through the httpx API (any transport)."""
    t = httpx.Timeout(total, connect=connect)
    request = httpx.Request(
        method,
        url,
        headers=[(k.encode("ascii"), v.encode("utf-8")) for k, v in headers.items()],
        content=content,
        # an ASCII URL goes out exactly as written (a non-ASCII one as httpx encodes it)
        extensions={"timeout": t.as_dict(), "pbl_url": url if url.isascii() else None},
    )
    if not 0 < (request.url.port or 80) < 65536:
        raise httpx.InvalidURL(f"port {request.url.port} is out of range 1-65535")
    resp = await transport.handle_async_request(request)
    try:
        head = await _read_head(resp.aiter_bytes())
        return _Answer(
            resp.status_code,
            resp.reason_phrase,
            resp.headers.get("location"),
            resp.headers.get("retry-after"),
            head,
            header_lines(resp.headers.raw),
        )
    finally:
        await resp.aclose()


def _not_really_a_timeout(exc: BaseException) -> bool:
    """httpx-aiohttp (a transport a caller may pass) maps every aiohttp connection error
    (a reset, a server that hung up) to ``ConnectTimeout``; its cause tells the two apart."""
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
