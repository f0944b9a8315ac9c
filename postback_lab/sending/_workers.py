"""Sending from several processes: the plan's hosts are split into shards, each sent by a
worker process with its own event loop, while the calling process stays the one writer of
the DuckDB log.

A worker journals its attempts like a send does (its own journal, ``<db>.inflight-<run>-
w<k>.jsonl``, owned by the worker process) and streams its log rows back as Arrow batches;
the parent appends them. When a worker ends it says what it did and waits for the
parent's word that its rows are in the log before it deletes its journal. A worker whose
parent is gone (killed) stops at its next batch and keeps its journal, which the next send
replays once the worker has exited: nothing completed is lost, and what was in flight is
logged ``cancelled`` (result unknown).

Messages on a worker's pipe (bytes, the first one says what): ``R`` + 8-byte count of
dispatches finished + Arrow IPC rows (worker -> parent); ``E`` + pickled counters (worker
-> parent, the last); ``S`` stop now, ``A`` your rows are logged, ``K`` keep your journal
(parent -> worker).
"""

from __future__ import annotations

import asyncio
import contextlib
import io
import multiprocessing
import os
import pickle
import signal
from collections import Counter
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, replace
from datetime import datetime
from multiprocessing.connection import Connection
from pathlib import Path
from typing import Any

import polars as pl

from .._errors import StoreError
from ..store import Journal, LogStore, Owner, log_writer
from ._limits import WALL_CLOCK
from ._options import SendOptions
from ._request import check_env
from ._scheduler import Run, host_loop, until_done_or_broken
from ._writer import LogWriter

#: seconds a stopping worker may take to log what it had in flight and say so
STOP_GRACE = 30.0


#: postbacks that make starting one more worker process worth it: a worker takes about a
#: second to start (a fresh interpreter importing polars), about what one core sends of
#: these in that time, so smaller plans are sent by one process
ROWS_PER_WORKER = 2_000


def worker_count(options: SendOptions, hosts: int, rows: int | None = None) -> int:
    """How many processes send: ``options.workers``, at most one per host. None (the
    default) is one per core, at most one per host and one per ``ROWS_PER_WORKER`` of the
    ``rows`` to send. 1 when the clock or transport is the caller's (they cannot cross
    processes)."""
    if options.transport is not None or options.clock is not WALL_CLOCK:
        return 1
    if options.workers is not None:
        return max(1, min(options.workers, hosts))
    wanted = os.cpu_count() or 1
    if rows is not None:
        wanted = min(wanted, rows // ROWS_PER_WORKER)
    return max(1, min(wanted, hosts))


def shards(todo: pl.DataFrame, n: int) -> list[pl.DataFrame]:
    """``todo`` split by host into ``n`` shards of about the same number of rows (the
    largest hosts first, each to the lightest shard)."""
    sizes = todo.group_by("host").len().sort(["len", "host"], descending=[True, False])
    load = [0] * n
    owner: dict[str, int] = {}
    for host, size in sizes.iter_rows():
        k = load.index(min(load))
        owner[host] = k
        load[k] += size
    key = pl.col("host").replace_strict(owner, return_dtype=pl.Int32)
    parts = todo.with_columns(key.alias("__shard")).partition_by("__shard", as_dict=True)
    return [parts[(k,)].drop("__shard") for k in range(n) if (k,) in parts]


@dataclass
class _Worker:
    """The parent's side of one worker."""

    process: Any  # multiprocessing.Process (spawn context)
    conn: Connection
    rows: int = 0
    ended: dict[str, Any] | None = None
    gone: bool = False  # the pipe closed before the worker said it ended
    stopped: bool = False


async def send_with_workers(
    store: LogStore,
    run: Run,
    run_id: str,
    parts: Sequence[pl.DataFrame],
    last: Mapping[str, int],
) -> int:
    """Send ``parts`` (plan rows with ``__due``, one shard each) from worker processes,
    appending their rows to ``store`` and counting them in ``run``; the number of workers
    that died before saying what they did (their journals are replayed here)."""
    ctx = multiprocessing.get_context("spawn")
    opts = replace(
        run.options,
        concurrency=max(1, run.options.concurrency // len(parts)),
        progress=False,
        workers=1,
        environ=None if run.options.environ is None else dict(run.options.environ),
    )
    workers: list[_Worker] = []
    try:
        for k, part in enumerate(parts):
            mine = {d: last[d] for d in part["dispatch_id"] if d in last} if last else {}
            parent, child = ctx.Pipe(duplex=True)
            proc = ctx.Process(
                target=worker_main,
                args=(
                    child,
                    str(store.path),
                    run_id,
                    k,
                    _ipc(part),
                    mine,
                    opts,
                    run.deadline,
                    (dict(run.held), dict(run.resumed)),
                ),
                name=f"postback-lab send worker {k}",
            )
            proc.start()
            child.close()
            workers.append(_Worker(proc, parent))
        await asyncio.gather(*(_drain(w, store, run) for w in workers))
    finally:
        # cancelled (Ctrl-C) or the log failed: stop the workers, keep what they say
        for w in workers:
            _tell(w, b"S")
        with contextlib.suppress(TimeoutError):
            async with asyncio.timeout(STOP_GRACE):
                await asyncio.shield(
                    asyncio.gather(
                        *(_drain(w, store, run) for w in workers if not (w.ended or w.gone))
                    )
                )
        for w in workers:
            await asyncio.to_thread(w.process.join, 5)
            if w.process.is_alive():
                w.process.kill()
            w.conn.close()
    gone = sum(w.gone for w in workers)
    if gone and run.writer.error is None:
        # a worker died: its journal (its owner gone) holds what it did; replay it now
        with contextlib.suppress(StoreError):
            log_writer(store).recover_inflight()
    return gone


async def _drain(w: _Worker, store: LogStore, run: Run) -> None:
    """Append a worker's rows as they come until it says it ended (then answer it)."""
    while w.ended is None and not w.gone:
        try:
            msg = await _recv(w.conn)
        except (EOFError, OSError):
            w.gone = True
            return
        if msg[:1] == b"R":
            done = int.from_bytes(msg[1:9], "little")
            rows = pl.read_ipc_stream(io.BytesIO(msg[9:]))
            if run.writer.error is None:
                try:
                    log_writer(store).append(rows, check_attempts=False, mark=False)
                    w.rows += rows.height
                except Exception as exc:  # the log cannot be written: stop, keep journals
                    run.writer.unlogged += rows.height
                    run.writer.fail(exc, log=True)
            else:
                run.writer.unlogged += rows.height
            if run.writer.error is not None:  # the log cannot be written: stop sending
                _tell(w, b"S")
            if run.bar is not None and done:
                run.bar.update(done)
        elif msg[:1] == b"E":
            w.ended = pickle.loads(msg[1:])
            _merge(run, w.ended)
            _tell(w, b"A" if run.writer.error is None else b"K")


async def _recv(conn: Connection) -> bytes:
    """The next message of ``conn``, waiting without blocking the event loop."""
    loop = asyncio.get_running_loop()
    while not conn.poll():
        ready = loop.create_future()
        fd = conn.fileno()
        loop.add_reader(fd, _wake, ready)
        try:
            await ready
        finally:
            loop.remove_reader(fd)
    return conn.recv_bytes()


def _wake(ready: asyncio.Future[None]) -> None:
    if not ready.done():
        ready.set_result(None)


def _tell(w: _Worker, what: bytes) -> None:
    if what == b"S":
        if w.stopped or w.ended is not None or w.gone:
            return
        w.stopped = True
    with contextlib.suppress(OSError):
        w.conn.send_bytes(what)


def _merge(run: Run, stats: Mapping[str, Any]) -> None:
    run.final.update(stats["final"])
    run.by_outcome.update(stats["by_outcome"])
    for host, counts in stats["host_stats"].items():
        run.host_stats.setdefault(host, Counter()).update(counts)
    run.failed_ids.extend(stats["failed_ids"])
    run.attempts += stats["attempts"]
    run.carry.update(stats["carry"])
    run.consumed.update(stats["consumed"])
    run.opened.update(stats["opened"])
    run.probes.update(stats["probes"])
    run.exhausted.update(stats["exhausted"])


def _ipc(frame: pl.DataFrame) -> bytes:
    buf = io.BytesIO()
    frame.write_ipc_stream(buf)
    return buf.getvalue()


# -- the worker process ---------------------------------------------------------------


class _PipeSink:
    """A worker's LogWriter target: rows go to the parent, journal records to the
    worker's own journal."""

    def __init__(self, conn: Connection, db: str, run_id: str, k: int) -> None:
        self.conn = conn
        self.key = f"{run_id}-w{k}"
        self.journal_file = Journal(Path(db))
        self.journal_file.claim(self.key, Owner.current())
        self.finished = 0  # dispatches finished, reported with the next batch
        self.run: Run | None = None

    def append(self, frame: pl.DataFrame, *, check_attempts: bool, mark: bool) -> int:
        done = sum(self.run.final.values()) if self.run is not None else 0
        step, self.finished = done - self.finished, done
        try:
            self.conn.send_bytes(b"R" + step.to_bytes(8, "little") + _ipc(frame))
        except OSError as exc:
            raise StoreError(f"the process writing the log is gone ({exc})") from exc
        return frame.height

    def journal(self, run_id: str, kind: str, rows: list[dict[str, Any]]) -> None:
        self.journal_file.write(self.key, kind, rows)

    def journal_lines(self, run_id: str, text: str) -> None:
        self.journal_file.write_lines(self.key, text)


def worker_main(
    conn: Connection,
    db: str,
    run_id: str,
    k: int,
    shard: bytes,
    last: Mapping[str, int],
    options: SendOptions,
    deadline: datetime | None,
    health: tuple[Mapping[str, Any], Mapping[str, Any]] = ({}, {}),
) -> None:
    """A worker process: send ``shard`` (Arrow IPC plan rows with ``__due``); ``health``:
    the hosts paused by earlier runs and the retries they left (see ``Run``)."""
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # Ctrl-C reaches the parent, which says stop
    frame = pl.read_ipc_stream(io.BytesIO(shard))
    sink = _PipeSink(conn, db, run_id, k)
    run = asyncio.run(_worker_run(conn, sink, frame, last, options, deadline, run_id, health))
    complete = run.writer.complete
    stats = {
        "final": dict(run.final),
        "by_outcome": dict(run.by_outcome),
        "host_stats": {h: dict(c) for h, c in run.host_stats.items()},
        "failed_ids": list(run.failed_ids),
        "attempts": run.attempts,
        "carry": dict(run.carry),
        "consumed": set(run.consumed),
        "opened": dict(run.opened),
        "probes": dict(run.probes),
        "exhausted": dict(run.exhausted),
    }
    answer = b""
    with contextlib.suppress(OSError, EOFError):
        conn.send_bytes(b"E" + pickle.dumps(stats))
        while answer not in (b"A", b"K"):
            answer = conn.recv_bytes()
    if answer == b"A" and complete:
        sink.journal_file.finish(sink.key)  # every row is in the log
    else:
        sink.journal_file.release(sink.key)  # replayed by the next send
    conn.close()


async def _worker_run(
    conn: Connection,
    sink: _PipeSink,
    frame: pl.DataFrame,
    last: Mapping[str, int],
    options: SendOptions,
    deadline: datetime | None,
    run_id: str,
    health: tuple[Mapping[str, Any], Mapping[str, Any]] = ({}, {}),
) -> Run:
    run = Run(
        options=options,
        writer=LogWriter(sink, run_id, dry_run=False),
        secrets=check_env(frame, options.environ),
        deadline=deadline,
        bar=None,
        held=health[0],
        resumed=health[1],
    )
    sink.run = run
    loop = asyncio.get_running_loop()
    stop = asyncio.Event()

    def heard() -> None:  # the parent said stop (or went away)
        with contextlib.suppress(OSError, EOFError):
            if conn.poll() and conn.recv_bytes() != b"S":
                return
        stop.set()
        loop.remove_reader(conn.fileno())

    loop.add_reader(conn.fileno(), heard)
    loops = [
        asyncio.create_task(host_loop(run, str(host), part, part["__due"], last))
        for (host,), part in frame.group_by("host", maintain_order=True)
    ]
    stopper = asyncio.create_task(stop.wait())
    try:
        work = asyncio.create_task(until_done_or_broken(loops, run))
        await asyncio.wait([work, stopper], return_when=asyncio.FIRST_COMPLETED)
    finally:
        with contextlib.suppress(ValueError, OSError):
            loop.remove_reader(conn.fileno())
        stopper.cancel()
        for t in [*loops, *run.in_flight]:
            t.cancel()
        await asyncio.gather(*loops, *run.in_flight, return_exceptions=True)
        if not work.done():
            work.cancel()
        await asyncio.gather(work, return_exceptions=True)
        run.writer.flush()
    return run
