"""Whole-process steps of bench_send.py: a plan file for ``postback-lab send``, and the
bare httpx-API loop over the same transport (its yardstick), each run as its own process.

    python benchmarks/_send_process.py prepare N PORTS OUT_DIR
    python benchmarks/_send_process.py floor URLS_FILE CONCURRENCY
"""

from __future__ import annotations

import asyncio
import sys
from pathlib import Path


def prepare(n: int, ports: list[int], out: Path) -> None:
    sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
    from benchmarks._send_steps import make_plan

    plan = make_plan(n, ports)
    plan.frame.write_parquet(out / "plan.parquet")
    (out / "urls.txt").write_text("\n".join(plan.frame["url"]) + "\n")


async def floor_loop(urls: list[str], concurrency: int) -> int:
    """The most a sender using the httpx API over httpx-aiohttp can do: fire each URL
    once, ``concurrency`` at a time; returns how many answered 200."""
    import httpx
    from httpx_aiohttp import AiohttpTransport

    sem = asyncio.Semaphore(concurrency)
    limits = httpx.Limits(max_connections=concurrency, max_keepalive_connections=concurrency)
    tr = AiohttpTransport(limits=limits, trust_env=False)

    async def one(u: str) -> int:
        async with sem:
            r = await tr.handle_async_request(httpx.Request("GET", u))
            await r.aread()
            await r.aclose()
            return r.status_code

    codes = await asyncio.gather(*(one(u) for u in urls))
    await tr.aclose()
    return sum(c == 200 for c in codes)


def floor(urls_file: str, concurrency: int) -> None:
    """``floor_loop`` over the URLs of a file, as a whole process."""
    urls = Path(urls_file).read_text().split()
    ok = asyncio.run(floor_loop(urls, concurrency))
    if ok != len(urls):
        raise SystemExit(f"floor: {ok} of {len(urls)} answered 200")


if __name__ == "__main__":
    if sys.argv[1] == "prepare":
        prepare(int(sys.argv[2]), [int(p) for p in sys.argv[3].split(",")], Path(sys.argv[4]))
    elif sys.argv[1] == "floor":
        floor(sys.argv[2], int(sys.argv[3]))
    else:
        raise SystemExit(f"unknown step {sys.argv[1]}")
