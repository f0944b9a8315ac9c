"""In IPython and Jupyter, postback_lab's own errors show as one short message instead of
a traceback through the library: they are about the user's input (a rules file, a column,
a locked log), and the message already says what to change. ``%tb`` still shows the full
traceback; any other exception keeps IPython's usual display.

Installed when ``postback_lab`` is imported inside IPython (it imports no widgets).
"""

from __future__ import annotations

from types import TracebackType
from typing import Any

from .._errors import PostbackLabError


def _short(
    shell: Any,
    etype: type[BaseException],
    value: BaseException,
    tb: TracebackType | None,
    tb_offset: int | None = None,
) -> Any:
    """IPython's custom-exception handler: show only ``ErrorClass: message``."""
    shell.showtraceback((etype, value, tb), exception_only=True)
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
    if existing and existing != (PostbackLabError,):
        return False  # the user's own handler wins
    shell.set_custom_exc((PostbackLabError,), _short)
    return True
