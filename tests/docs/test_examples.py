"""The documentation's examples run: every ``python`` and ``sh`` block of every page (see
``_pages`` for the markers), against the bundled sample data and receivers on 127.0.0.1."""

from __future__ import annotations

import ast
import asyncio
import contextlib
import inspect
import io
import os
import subprocess
import sys
from pathlib import Path

import pytest

from postback_lab import LogStore, Receiver

from ._pages import PAGES, ROOT, blocks, expected_after, missing_lines

RUNNABLE = ("python", "sh")


def _pages_with(lang: str) -> list[Path]:
    return [p for p in PAGES if any(b.lang == lang and b.mark != "skip" for b in blocks(p))]


def _showing(tree: ast.Module) -> ast.Module:
    """The block with each top-level expression passed to ``__shown__`` first: what a
    notebook cell would display (a chart on its last line) is kept to be rendered."""
    for i, node in enumerate(tree.body):
        if isinstance(node, ast.Expr):
            call = ast.Call(ast.Name("__shown__", ast.Load()), [node.value], [])
            tree.body[i] = ast.copy_location(ast.Expr(call), node)
    return ast.fix_missing_locations(tree)


def _render_charts(values: list[object], where: str, seen: set[int]) -> int:
    """Draw every Altair chart among ``values`` not drawn yet (``seen``) to SVG as a
    notebook would (vl-convert, no network): a chart that only fails when drawn fails
    here. Returns how many."""
    import altair as alt
    import vl_convert

    drawn = 0
    for value in values:
        if isinstance(value, alt.TopLevelMixin) and id(value) not in seen:
            seen.add(id(value))
            svg = vl_convert.vegalite_to_svg(value.to_dict())
            assert "<svg" in svg and "<path" in svg, f"{where}: the chart drew nothing"
            drawn += 1
    return drawn


def _id(page: Path) -> str:
    return str(page.relative_to(ROOT))


def test_every_code_block_has_a_known_language() -> None:
    known = {*RUNNABLE, "text", "yaml", "json", "console", "csv", "mermaid", ""}
    odd = [f"{b.where}: {b.lang!r}" for p in PAGES for b in blocks(p) if b.lang not in known]
    assert odd == [], "use python or sh (run by this test), or text/yaml/json (shown only)"


def test_output_markers_follow_a_runnable_block() -> None:
    for p in PAGES:
        bs = blocks(p)
        for i, b in enumerate(bs):
            if b.mark == "output":
                assert b.lang == "text", b.where
                assert i > 0 and bs[i - 1].lang in RUNNABLE and bs[i - 1].mark != "skip", b.where


@pytest.fixture
def clean_env():
    """Pages set variables such as CRM_TOKEN the way a reader would: undone afterwards."""
    before = dict(os.environ)
    yield
    os.environ.clear()
    os.environ.update(before)


@pytest.mark.parametrize("page", _pages_with("python"), ids=_id)
def test_python_blocks_run(page: Path, tmp_path, monkeypatch, clean_env) -> None:
    monkeypatch.chdir(tmp_path)
    all_blocks = blocks(page)
    shown: list[object] = []
    seen: set[int] = set()
    ns: dict[str, object] = {"__name__": "__main__", "__shown__": _keep(shown)}
    loop = asyncio.new_event_loop()
    try:
        for b in all_blocks:
            if b.lang != "python" or b.mark == "skip":
                continue
            tree = _showing(ast.parse(b.text, b.where))
            code = compile(tree, b.where, "exec", flags=ast.PyCF_ALLOW_TOP_LEVEL_AWAIT)
            out = io.StringIO()
            with contextlib.redirect_stdout(out):
                result = eval(code, ns)  # exec, with top-level await as in a notebook
                if inspect.iscoroutine(result):
                    loop.run_until_complete(result)
            _render_charts([*shown, *ns.values()], b.where, seen)
            shown.clear()
            if (want := expected_after(all_blocks, b)) is not None:
                assert missing_lines(want.text, out.getvalue()) == [], (
                    f"{b.where} printed:\n{out.getvalue()}"
                )
    finally:
        for value in ns.values():
            if isinstance(value, Receiver):  # stop() is idempotent
                value.stop()
            elif isinstance(value, LogStore) and not value.closed:
                value.close()
        loop.close()


def _keep(into: list[object]):
    def shown(value: object) -> object:
        into.append(value)
        return value

    return shown


@pytest.mark.parametrize("page", _pages_with("sh"), ids=_id)
def test_shell_blocks_run(page: Path, tmp_path, clean_env) -> None:
    all_blocks = blocks(page)
    shell = [b for b in all_blocks if b.lang == "sh" and b.mark != "skip"]
    with contextlib.ExitStack() as stack:
        port = None
        if any(b.mark == "receiver" for b in shell):
            port = stack.enter_context(Receiver()).port
        script = ["set -euo pipefail"]
        for n, b in enumerate(shell):
            script.append(f"printf '\\036{n}\\n'")  # a record separator before each block
            if b.mark != "receiver":
                script.append(b.text if port is None else b.text.replace("8765", str(port)))
        env = {
            **os.environ,
            "PATH": f"{Path(sys.executable).parent}{os.pathsep}{os.environ['PATH']}",
        }
        done = subprocess.run(
            ["bash", "-c", "\n".join(script)],
            cwd=tmp_path,
            env=env,
            capture_output=True,
            text=True,
            timeout=600,
        )
    outputs = done.stdout.split("\x1e")[1:]
    last = shell[len(outputs) - 1] if outputs else shell[0]
    assert done.returncode == 0, (
        f"{last.where} failed:\n{done.stdout[-3000:]}\n{done.stderr[-3000:]}"
    )
    for n, b in enumerate(shell):
        if (want := expected_after(all_blocks, b)) is not None:
            text = outputs[n].split("\n", 1)[1] if "\n" in outputs[n] else ""
            assert missing_lines(want.text, text) == [], f"{b.where} printed:\n{text}"
