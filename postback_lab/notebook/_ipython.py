"""In IPython and Jupyter, postback_lab's own errors show as one short message instead of
a traceback through the library: they are about the user's input (a rules file, a column,
a locked log), and the message already says what to change. ``%tb`` still shows the full
traceback. Interrupting a send or backfill shows one line (completed attempts are in the
log) instead of a CancelledError traceback; any other exception keeps IPython's display.

Installed when ``postback_lab`` is imported inside IPython (it imports no widgets).
"""

from __future__ import annotations

import asyncio
from pathlib import Path
from types import TracebackType
from typing import Any

from .._errors import PostbackLabError
from ..sending import SendResult, on_cancel

#: shown when Interrupt stops a send or backfill (instead of a CancelledError traceback)
INTERRUPTED = (
    "interrupted: attempts completed so far are in the log; running the same send or "
    "backfill again sends only what is still missing"
)
_cancelled: list[str] = []  # the summary of the run an Interrupt just stopped


def _remember(result: SendResult) -> None:
    """Keep a cancelled run's summary for the one-line interrupt message."""
    errors = {k: v for k, v in result.by_outcome.items() if k not in ("delivered", "dry_run")}
    failed = ", ".join(f"{v:,} {k}" for k, v in sorted(errors.items(), key=lambda kv: -kv[1]))
    _cancelled[:] = [result.summary() + (f" (failed attempts: {failed})" if failed else "")]


def interrupted_message() -> str:
    """The one line an Interrupt inside a send or backfill shows (then forgotten)."""
    if not _cancelled:
        return INTERRUPTED
    line = _cancelled.pop()
    return (
        f"interrupted {line}. Completed attempts are in the log; running the same send or "
        "backfill again sends only what is still missing"
    )


_PACKAGE = str(Path(__file__).resolve().parent.parent)
_HANDLED = (PostbackLabError, KeyboardInterrupt, asyncio.CancelledError)


def _through_us(tb: TracebackType | None) -> bool:
    """Whether a traceback passes through postback_lab's own code."""
    while tb is not None:
        if tb.tb_frame.f_code.co_filename.startswith(_PACKAGE):
            return True
        tb = tb.tb_next
    return False


def _short(
    shell: Any,
    etype: type[BaseException],
    value: BaseException,
    tb: TracebackType | None,
    tb_offset: int | None = None,
) -> Any:
    """IPython's custom-exception handler: ``ErrorClass: message`` for our errors, one line
    for an interrupt inside a send, IPython's usual traceback for anything else."""
    if issubclass(etype, PostbackLabError):
        shell.showtraceback((etype, value, tb), exception_only=True)
    elif _through_us(tb):
        shell.showtraceback(
            (KeyboardInterrupt, KeyboardInterrupt(interrupted_message()), None),
            exception_only=True,
        )
    else:
        shell.showtraceback((etype, value, tb), tb_offset=tb_offset)
    return None


def install(shell: Any = None) -> bool:
    """Register the short display of PostbackLabError with the running IPython shell
    (``shell``, or the current one); False outside IPython. Other handlers a user set
    for other exceptions are kept."""
    if shell is None:
        try:
            from IPython import get_ipython
        except ImportError:
            return False
        shell = get_ipython()
    if shell is None or not hasattr(shell, "set_custom_exc"):
        return False
    existing = tuple(getattr(shell, "custom_exceptions", ()) or ())
    if existing and existing != _HANDLED:
        return False  # the user's own handler wins
    shell.set_custom_exc(_HANDLED, _short)
    on_cancel(_remember)  # a cancelled run's summary joins the one line, not stderr
    return True
