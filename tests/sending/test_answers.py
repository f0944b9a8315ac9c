"""Answers as partners send them: a compressed body is read decoded, by the default
engine's direct path as by the httpx API, so `success.body_matches` and the log see the
same text."""

from __future__ import annotations

import asyncio
import gzip

import polars as pl
import pytest

from postback_lab import LogStore, build_plan, read_rules
from postback_lab.sending import ENGINES, Retry, send_sync

from .test_wire import RawServer

BODY = b'{"status": "accepted", "id": 7}'


class GzipServer(RawServer):
    """Answers 200 with a gzip-compressed JSON body."""

    async def _handle(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        packed = gzip.compress(BODY)
        head = (
            b"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Encoding: gzip\r\n"
            b"Content-Length: " + str(len(packed)).encode() + b"\r\n\r\n"
        )
        try:
            while line := await reader.readline():
                self.lines.append(line.rstrip(b"\r\n"))
                while (await reader.readline()) not in (b"\r\n", b""):
                    pass
                writer.write(head + packed)
                await writer.drain()
        except (ConnectionError, asyncio.CancelledError):
            pass
        finally:
            writer.close()


@pytest.mark.parametrize("engine", ENGINES)
def test_a_gzip_answer_is_read_decoded(engine, tmp_path):
    events = pl.DataFrame(
        {"transaction_id": ["t1"], "status": "approved", "occurred_at": "2024-01-01T00:00:00Z"}
    )
    db = tmp_path / "log.duckdb"
    with GzipServer() as srv:
        rules = read_rules(
            [
                {
                    "name": "r",
                    "url": f"http://127.0.0.1:{srv.port}/pb?t={{transaction_id}}",
                    "success": {"body_matches": '"status": "accepted"'},
                }
            ]
        )
        result = send_sync(
            build_plan(events, rules),
            db,
            engine=engine,
            retry=Retry.none(),
            progress=False,
        )
    assert (result.delivered, result.failed) == (1, 0)
    with LogStore(db) as s:
        assert s.attempts()["response_body"].to_list() == [BODY.decode()]
