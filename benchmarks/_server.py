"""A fast loopback server for benchmarks: aiohttp answering 200 on several ports.

Run as a separate process: ``python benchmarks/_server.py PORT [PORT ...]``.
"""

from __future__ import annotations

import asyncio
import sys

from aiohttp import web


async def ok(request: web.Request) -> web.Response:
    await request.read()
    return web.Response(text="OK")


async def main(ports: list[int]) -> None:
    app = web.Application()
    app.router.add_route("*", "/{tail:.*}", ok)
    runner = web.AppRunner(app, access_log=None)
    await runner.setup()
    for port in ports:
        await web.TCPSite(runner, "127.0.0.1", port, backlog=2048).start()
    print("ready", flush=True)
    await asyncio.Event().wait()


if __name__ == "__main__":
    asyncio.run(main([int(p) for p in sys.argv[1:]]))
