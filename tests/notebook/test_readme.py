"""Every ```python block of the README runs as written, in order, in one namespace (top-level
``await`` allowed, as in a notebook), from a fresh folder, against a receiver listening
where the sample rules point (127.0.0.1:8765), as the README tells a reader to start one.

Port 8765 is fixed by the sample rules, so runs on one machine take turns through a lock
file; a port held by something else skips the test, saying so.
"""

from __future__ import annotations

import ast
import asyncio
import contextlib
import fcntl
import inspect
import os
import re
import tempfile
from pathlib import Path

import pytest

import postback_lab as pbl

REPO = Path(__file__).resolve().parents[2]
README = REPO / "README.md"
PORT = 8765
BLOCK = re.compile(r"^```python[^\n]*\n(.*?)^```", re.S | re.M)


def python_blocks(path: Path) -> list[tuple[int, str]]:
    """(line number, code) of each ```python block of a Markdown file."""
    text = path.read_text(encoding="utf-8")
    return [(text[: m.start()].count("\n") + 2, m.group(1)) for m in BLOCK.finditer(text)]


def run_blocks(blocks: list[tuple[int, str]], where: str) -> dict[str, object]:
    """Run the blocks one after another in one namespace; a failure names its line."""
    ns: dict[str, object] = {"__name__": "__readme__"}
    for line, code in blocks:
        compiled = compile(code, f"{where}:{line}", "exec", flags=ast.PyCF_ALLOW_TOP_LEVEL_AWAIT)
        if compiled.co_flags & inspect.CO_COROUTINE:
            asyncio.run(eval(compiled, ns))
        else:
            exec(compiled, ns)
    return ns


@contextlib.contextmanager
def receiver_on_8765():
    """A Receiver on 127.0.0.1:8765, one test run of this machine at a time."""
    lock = Path(tempfile.gettempdir()) / "postback-lab-8765.lock"
    with open(lock, "w") as f:
        fcntl.flock(f, fcntl.LOCK_EX)  # other runs of this test wait here
        try:
            rx = pbl.Receiver(port=PORT).start()
        except OSError as exc:
            pytest.skip(f"127.0.0.1:{PORT} is taken by another program ({exc})")
        try:
            yield rx
        finally:
            rx.stop()


def test_the_readme_has_python_to_run():
    assert python_blocks(README), "the README shows no ```python block"


def test_every_readme_python_block_runs_as_written(tmp_path, monkeypatch):
    blocks = python_blocks(README)
    monkeypatch.chdir(tmp_path)
    if (REPO / "data").is_dir():  # paths in the README are relative to the repository
        os.symlink(REPO / "data", tmp_path / "data")
    monkeypatch.delenv("CRM_TOKEN", raising=False)  # what a reader's shell has: nothing
    with receiver_on_8765() as rx:
        run_blocks(blocks, "README.md")
    assert rx.requests, "the README's blocks sent nothing to the receiver"
