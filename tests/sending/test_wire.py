"""What goes over the socket: the planned URL byte for byte, one request per logged
attempt, and a timeout that bounds the whole attempt. Real servers on 127.0.0.1."""

from __future__ import annotations

import asyncio
import threading

import httpx
import polars as pl
import pytest

from postback_lab.receiver import Receiver
from postback_lab.sending import ENGINES, Retry, send_sync
from postback_lab.store import LogStore

from .conftest import make_plan

FAST = Retry(delays=(0.01, 0.01, 0.01), jitter=0.0)

#: reserved characters that a client must not decode or re-encode: an encoded '&' in a
#: path, an encoded '?' '/' '&' '=' '#' in a query value, an encoded unreserved '~'
PATHS = [
    "/a%26b/c%2Fd?x=%3F%2F%26%3D%23&y=a%20b",
    "/p?v=%7E~&w=caf%C3%A9&z=%25",
    "/sub%3Fdir/?q=%2B+",
]


class RawServer:
    """A bare asyncio server that records each request line as bytes and answers 200."""

    def __init__(self) -> None:
        self.lines: list[bytes] = []
        self.loop = asyncio.new_event_loop()
        self.ready = threading.Event()
        self.thread = threading.Thread(target=self._run, daemon=True)

    def __enter__(self) -> RawServer:
        self.thread.start()
        self.ready.wait(10)
        return self

    def __exit__(self, *exc: object) -> None:
        self.loop.call_soon_threadsafe(self.loop.stop)
        self.thread.join(10)

    def _run(self) -> None:
        asyncio.set_event_loop(self.loop)
        server = self.loop.run_until_complete(asyncio.start_server(self._handle, "127.0.0.1", 0))
        self.port = server.sockets[0].getsockname()[1]
        self.ready.set()
        try:
            self.loop.run_forever()
        finally:
            server.close()
            tasks = asyncio.all_tasks(self.loop)
            for t in tasks:
                t.cancel()
            self.loop.run_until_complete(asyncio.gather(*tasks, return_exceptions=True))
            self.loop.close()

    async def _handle(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            while line := await reader.readline():
                self.lines.append(line.rstrip(b"\r\n"))
                while (await reader.readline()) not in (b"\r\n", b""):
                    pass
                writer.write(b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nOK")
                await writer.drain()
        except (ConnectionError, asyncio.CancelledError):
            pass
        finally:
            writer.close()


@pytest.mark.parametrize("engine", ENGINES)
def test_bytes_on_the_wire_equal_the_planned_url(engine, tmp_path):
    with RawServer() as server:
        base = f"http://127.0.0.1:{server.port}"
        plan = make_plan([base + p for p in PATHS])
        result = send_sync(plan, tmp_path / "log.duckdb", engine=engine, progress=False)
    assert result.delivered == len(PATHS)
    assert sorted(server.lines) == sorted(f"GET {p} HTTP/1.1".encode() for p in PATHS)


def test_httpx_url_keeps_an_encoded_url_as_it_is():
    for p in PATHS:
        assert httpx.URL("http://h" + p).raw_path == p.encode()


@pytest.mark.parametrize("engine", ENGINES)
def test_a_reset_is_never_resent_by_the_transport(engine, tmp_path):
    """A reused keep-alive connection that resets: aiohttp would resend the GET by itself,
    hiding an attempt; here every request the receiver sees is a row of the log."""
    db = tmp_path / "log.duckdb"
    with Receiver() as rx:
        rx.set_script("/p", ["reset", "reset", "200"])
        plan = make_plan([f"{rx.url}/warm", f"{rx.url}/p"])  # /warm opens the connection
        result = send_sync(plan, db, per_host=1, retry=FAST, engine=engine, progress=False)
        seen = [r.answer for r in rx.received("/p")]
    with LogStore(db) as s:
        rows = s.attempts().filter(pl.col("url").str.ends_with("/p"))
    assert seen == ["reset", "reset", "200"]
    assert rows["outcome"].to_list() == ["connection_error", "connection_error", "delivered"]
    assert rows["attempt"].to_list() == [1, 2, 3]
    assert result.delivered == 2 and result.attempts == 4


@pytest.mark.parametrize("engine", ENGINES)
def test_the_timeout_bounds_the_whole_attempt(engine, tmp_path):
    """A server dripping one byte every 30 ms answers in time for every single read, but
    not within the rule's timeout: that is a timeout, not a delivery."""
    db = tmp_path / "log.duckdb"
    with Receiver() as rx:
        rx.set_script("/slow", ["drip:30"])
        plan = make_plan([f"{rx.url}/slow"], timeout_s=0.5)
        result = send_sync(plan, db, retry=Retry.none(), engine=engine, progress=False)
    with LogStore(db) as s:
        row = s.attempts().row(0, named=True)
    assert (row["outcome"], row["status_code"]) == ("timeout", None)
    assert "0.5s" in row["error"]
    assert result.failed == 1 and result.delivered == 0
