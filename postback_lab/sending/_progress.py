"""How a send shows its progress: a bar in notebooks (a widget) and terminals, plain
lines every few seconds when the output is neither (a file, a CI log, a pipe), and one
line when the send only waits for retries due later.

The bar's text puts the key numbers first (done/total, delivered, failed, retrying and
when the next retry goes) and fits an 80-column terminal; the failed attempts by
outcome are in the send's result.
"""

from __future__ import annotations

import sys
import time
from typing import IO, Any, Protocol

#: seconds between two plain progress lines
EVERY = 10.0
#: a wait for retries this long or longer is said in a line of its own (shorter ones
#: pass before anyone wonders)
SAY_WAIT = 30.0


class Bar(Protocol):
    """What a send needs of its progress display (tqdm's names)."""

    n: float
    total: float | None

    def update(self, n: float | None = 1) -> Any: ...

    def set_postfix_str(self, s: str = "", refresh: bool = True) -> None: ...

    def close(self) -> None: ...


def progress_bar(total: int, enabled: bool) -> Bar | None:
    """A tqdm widget in a notebook, a tqdm bar on a terminal, else plain ``Lines``."""
    if not enabled or total == 0:
        return None
    if _in_kernel():
        from tqdm.auto import tqdm as auto

        bar: Bar = auto(total=total, desc="postbacks", unit="pb", smoothing=0.1)
        return bar
    if _is_terminal(sys.stderr):
        from tqdm import tqdm

        return tqdm(
            total=total,
            unit="pb",
            smoothing=0.1,
            bar_format="{n_fmt}/{total_fmt}{postfix} |{bar}| {elapsed}<{remaining}",
        )
    return Lines(total)


def say(bar: Bar, text: str) -> None:
    """A line of its own above the bar (a notebook's output, else stderr)."""
    if isinstance(bar, Lines):
        bar.say(text)
        return
    write = getattr(bar, "write", None)
    notebook = type(bar).__module__.startswith("tqdm.notebook")
    if write is not None:
        write(text, file=sys.stdout if notebook else sys.stderr)


class Lines:
    """Progress as plain lines on stderr, at most one per ``EVERY`` seconds and one at the
    end: ``postbacks 450/1,000 (45%) · delivered 440 · failed 3 · 12s``. No carriage
    returns, so a log file or CI output stays readable."""

    def __init__(self, total: int, file: IO[str] | None = None) -> None:
        self.n: float = 0
        self.total: float | None = total
        self.text = ""
        self.file = file
        self.started = self.shown = time.monotonic()
        self.closed = False

    def update(self, n: float | None = 1) -> None:
        self.n += n or 0
        self._maybe()

    def set_postfix_str(self, s: str = "", refresh: bool = True) -> None:
        self.text = s
        self._maybe()

    def say(self, text: str) -> None:
        print(text, file=self.file or sys.stderr, flush=True)

    def line(self) -> str:
        total = int(self.total or 0)
        pct = f" ({self.n / total:.0%})" if total else ""
        parts = [f"postbacks {int(self.n):,}/{total:,}{pct}"]
        if self.text:
            parts.append(self.text)
        parts.append(f"{time.monotonic() - self.started:.0f}s")
        return " · ".join(parts)

    def close(self) -> None:
        if not self.closed:
            self.closed = True
            self.say(self.line())

    def _maybe(self) -> None:
        tick = time.monotonic()
        if tick - self.shown >= EVERY:
            self.shown = tick
            self.say(self.line())


def _is_terminal(stream: IO[str]) -> bool:
    try:
        return stream.isatty()
    except (AttributeError, ValueError):
        return False


def _in_kernel() -> bool:
    """Whether this runs in a Jupyter kernel (tqdm's widget then draws the bar)."""
    ipython = sys.modules.get("IPython")
    if ipython is None:
        return False
    shell = ipython.get_ipython()
    return shell is not None and hasattr(shell, "kernel")
