"""Run async code from sync code, also inside a running loop (a Jupyter kernel)."""

from __future__ import annotations

import asyncio
import concurrent.futures
import contextlib
import functools
from collections.abc import Callable, Coroutine
from typing import Any, ParamSpec, TypeVar

P = ParamSpec("P")
R = TypeVar("R")


def run_sync(coro: Coroutine[Any, Any, R]) -> R:
    """Run a coroutine to completion from sync code. Inside a running loop (Jupyter) it
    runs on a fresh loop in a worker thread, since the kernel's loop cannot be re-entered;
    an interrupt (Ctrl-C, the notebook's Interrupt) then cancels it there and waits for it
    to wind down (a send logs what completed), instead of leaving it running."""
    try:
        asyncio.get_running_loop()
    except RuntimeError:
        return asyncio.run(coro)  # Ctrl-C cancels the coroutine, then raises KeyboardInterrupt
    loop = asyncio.new_event_loop()

    def run() -> R:
        try:
            return loop.run_until_complete(coro)
        finally:
            loop.run_until_complete(loop.shutdown_asyncgens())
            loop.close()

    def cancel_all() -> None:
        for task in asyncio.all_tasks(loop):
            task.cancel()

    with concurrent.futures.ThreadPoolExecutor(1) as pool:
        done = pool.submit(run)
        try:
            return done.result()
        except KeyboardInterrupt:
            with contextlib.suppress(RuntimeError):  # the loop closed meanwhile
                loop.call_soon_threadsafe(cancel_all)
            concurrent.futures.wait([done])  # the cancelled send flushes its log
            raise


def blocking(fn: Callable[P, Coroutine[Any, Any, R]], doc: str) -> Callable[P, R]:
    """The sync twin of an async function with the same parameters, which completion and
    type checkers see (``send_sync = blocking(send, "...")``), documented by ``doc``."""

    @functools.wraps(fn)
    def wrapper(*args: P.args, **kwargs: P.kwargs) -> R:
        return run_sync(fn(*args, **kwargs))

    wrapper.__name__ = wrapper.__qualname__ = f"{fn.__name__}_sync"
    wrapper.__doc__ = doc
    return wrapper
