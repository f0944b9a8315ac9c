"""A local HTTP receiver that records every postback, with deterministic fault knobs.

Used by the tests, the demo and ``postback-lab receiver``. It listens on 127.0.0.1 only
(by default), runs its own asyncio loop in a thread, and stops when the ``with`` ends.

Faults, per path (``script``) or at random (``fail_rate`` with ``seed``), as strings:
``"200"``/``"500"``/any code, ``"429:SECONDS"`` (Retry-After), ``"308"`` (redirect),
``"reset"`` (connection reset), ``"hang"`` (never answers), ``"big"`` (1 MiB body),
``"drip:MS"`` (200 whose 100-byte body comes one byte every MS milliseconds).
``"echo"`` (200 whose body is the request's line and headers, each header also sent back
as ``X-Echo-Name``, as partners that echo a request do). ``response_headers`` adds headers
to every answer. A script
such as ``["reset", "reset", "200"]`` resets twice, then answers. Each request keeps its
request line exactly as it came over the socket (``line``).
"""

from __future__ import annotations

import asyncio
import hashlib
import socket
import struct
import threading
import time
from collections import defaultdict
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import parse_qsl, urlsplit

from ._util import render

_REASONS = {
    200: "OK",
    204: "No Content",
    301: "Moved Permanently",
    308: "Permanent Redirect",
    400: "Bad Request",
    404: "Not Found",
    408: "Request Timeout",
    429: "Too Many Requests",
    500: "Internal Server Error",
    502: "Bad Gateway",
    503: "Service Unavailable",
}


@dataclass(frozen=True)
class ReceivedRequest:
    """One request as the receiver saw it (query values decoded)."""

    method: str
    path: str
    query: list[tuple[str, str]]
    headers: dict[str, str]
    body: bytes
    target: str
    received_at: float
    answer: str
    line: str = ""  # the request line as it came over the socket


@dataclass
class Receiver:
    """``with Receiver() as rx: ... rx.url ... rx.requests`` — a real server on loopback."""

    host: str = "127.0.0.1"
    port: int = 0
    fail_rate: float = 0.0
    latency_ms: float = 0.0
    seed: int = 0
    script: dict[str, list[str]] = field(default_factory=dict)
    #: headers added to every answer (a partner's own: ``{"X-Request-Id": "..."}``)
    response_headers: dict[str, str] = field(default_factory=dict)
    requests: list[ReceivedRequest] = field(default_factory=list, init=False)
    _counts: dict[str, int] = field(default_factory=lambda: defaultdict(int), init=False)
    _loop: asyncio.AbstractEventLoop | None = field(default=None, init=False)
    _thread: threading.Thread | None = field(default=None, init=False)
    _lock: threading.Lock = field(default_factory=threading.Lock, init=False)

    @property
    def url(self) -> str:
        return f"http://{self.host}:{self.port}"

    def start(self) -> Receiver:
        ready = threading.Event()
        error: list[BaseException] = []

        def run() -> None:
            loop = asyncio.new_event_loop()
            asyncio.set_event_loop(loop)
            self._loop = loop
            try:
                server = loop.run_until_complete(
                    asyncio.start_server(self._handle, self.host, self.port, backlog=1024)
                )
            except OSError as exc:
                error.append(exc)
                ready.set()
                return
            self.port = server.sockets[0].getsockname()[1]
            ready.set()
            try:
                loop.run_forever()
            finally:
                server.close()
                tasks = asyncio.all_tasks(loop)
                for task in tasks:
                    task.cancel()
                loop.run_until_complete(asyncio.gather(*tasks, return_exceptions=True))
                loop.close()

        self._thread = threading.Thread(target=run, name="postback-lab-receiver", daemon=True)
        self._thread.start()
        ready.wait(10)
        if error:
            raise error[0]
        return self

    def stop(self) -> None:
        if self._loop is not None and self._thread is not None:
            self._loop.call_soon_threadsafe(self._loop.stop)
            self._thread.join(10)
            self._loop = None

    def __enter__(self) -> Receiver:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    def set_script(self, path: str, answers: list[str]) -> None:
        """The n-th request to ``path`` gets ``answers[n]`` (the last one repeats)."""
        with self._lock:
            self.script[path] = list(answers)
            self._counts[path] = 0

    def received(self, path: str | None = None) -> list[ReceivedRequest]:
        with self._lock:
            return [r for r in self.requests if path is None or r.path == path]

    def _repr_html_(self) -> str:
        return render("Receiver", f"at {self.url}: {len(self.requests):,} requests")

    # -- the server --------------------------------------------------------------
    def _answer(self, path: str, target: str) -> str:
        with self._lock:
            n = self._counts[path]
            self._counts[path] = n + 1
            answers = self.script.get(path)
            if answers:
                return answers[min(n, len(answers) - 1)]
            if self.fail_rate > 0:
                digest = hashlib.sha256(f"{self.seed}|{target}|{self._counts[target]}".encode())
                self._counts[target] += 1
                draw = struct.unpack(">Q", digest.digest()[:8])[0] / 2**64
                if draw < self.fail_rate:
                    return "500"
            return "200"

    async def _handle(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            while True:
                line = await reader.readline()
                if not line:
                    return
                method, target, _ = line.decode("latin-1").split(" ", 2)
                headers: dict[str, str] = {}
                while True:
                    h = await reader.readline()
                    if h in (b"\r\n", b"\n", b""):
                        break
                    k, _, v = h.decode("latin-1").partition(":")
                    headers[k.strip().lower()] = v.strip()
                body = b""
                if (length := int(headers.get("content-length", "0") or 0)) > 0:
                    body = await reader.readexactly(length)
                parts = urlsplit(target)
                answer = self._answer(parts.path, target)
                with self._lock:
                    self.requests.append(
                        ReceivedRequest(
                            method,
                            parts.path,
                            parse_qsl(parts.query, keep_blank_values=True),
                            headers,
                            body,
                            target,
                            time.time(),
                            answer,
                            line.decode("latin-1").rstrip("\r\n"),
                        )
                    )
                if self.latency_ms:
                    await asyncio.sleep(self.latency_ms / 1000)
                if answer == "hang":
                    await asyncio.sleep(3600)
                    return
                if answer == "reset":
                    sock = writer.get_extra_info("socket")
                    if sock is not None:
                        sock.setsockopt(
                            socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0)
                        )
                    writer.transport.abort()
                    return
                if answer.startswith("drip:"):
                    await _drip(writer, float(answer[5:]) / 1000)
                    return
                if answer == "echo":
                    writer.write(_echo(line, headers, self.response_headers))
                else:
                    writer.write(_response(answer, self.response_headers))
                await writer.drain()
                if headers.get("connection", "").lower() == "close":
                    return
        except (ConnectionError, asyncio.IncompleteReadError, ValueError, asyncio.CancelledError):
            return  # a cancelled handler ends quietly: the receiver is stopping
        finally:
            if not writer.is_closing():
                writer.close()


async def _drip(writer: asyncio.StreamWriter, every: float, size: int = 100) -> None:
    """A 200 whose body trickles in one byte at a time (a slow or hostile server)."""
    writer.write(f"HTTP/1.1 200 OK\r\nContent-Length: {size}\r\n\r\n".encode())
    for _ in range(size):
        await writer.drain()
        await asyncio.sleep(every)
        writer.write(b"x")
    await writer.drain()


def _echo(line: bytes, headers: dict[str, str], extra: dict[str, str]) -> bytes:
    """A 200 echoing the request: its line and headers in the body, each header again as
    ``X-Echo-Name``."""
    lines = [line.decode("latin-1").rstrip("\r\n"), *(f"{k}: {v}" for k, v in headers.items())]
    body = ("\n".join(lines) + "\n").encode("latin-1", "replace")
    echoed = {f"X-Echo-{k.title()}": v for k, v in headers.items()}
    head = [
        "HTTP/1.1 200 OK",
        f"Content-Length: {len(body)}",
        "Content-Type: text/plain",
        *(f"{k}: {v}" for k, v in {**extra, **echoed}.items()),
    ]
    return ("\r\n".join(head) + "\r\n\r\n").encode("latin-1", "replace") + body


def _response(answer: str, headers: dict[str, str] | None = None) -> bytes:
    extra: dict[str, str] = dict(headers or {})
    if answer == "big":
        code, body = 200, b"x" * (1 << 20)
    else:
        code_text, _, arg = answer.partition(":")
        code = int(code_text)
        body = b"OK" if 200 <= code < 300 else _REASONS.get(code, "error").encode()
        if code in (204, 304):  # no body, by definition
            body = b""
        if code == 429 and arg:
            extra["Retry-After"] = arg
        if 300 <= code < 400:
            extra["Location"] = "/redirected"
    head = [
        f"HTTP/1.1 {code} {_REASONS.get(code, 'Status')}",
        f"Content-Length: {len(body)}",
        "Content-Type: text/plain",
    ] + [f"{k}: {v}" for k, v in extra.items()]
    return ("\r\n".join(head) + "\r\n\r\n").encode() + body


def serve_forever(**kwargs: Any) -> None:
    """Run a receiver until Ctrl-C, printing a line per second of traffic."""
    with Receiver(**kwargs) as rx:
        print(f"receiving postbacks at {rx.url} (Ctrl-C to stop)", flush=True)
        seen = 0
        try:
            while True:
                time.sleep(1)
                n = len(rx.requests)
                if n != seen:
                    print(f"{n:,} requests received", flush=True)
                    seen = n
        except KeyboardInterrupt:
            print(f"stopped after {len(rx.requests):,} requests", flush=True)
