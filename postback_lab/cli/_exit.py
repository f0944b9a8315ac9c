"""Exit codes and how a command's end becomes one: errors as one sentence on stderr
(``--debug`` shows the traceback instead), an unexpected error's traceback in a file to
report, Ctrl-C and SIGTERM as an interruption, a closed pipe as success."""

from __future__ import annotations

import argparse
import os
import signal
import sys
import tempfile
import threading
import traceback
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from types import FrameType

from .._errors import DeliveryError, InputError, StoreError
from .._util import first_line
from .._version import __version__

EXIT_OK, EXIT_FAILED, EXIT_INPUT, EXIT_INTERNAL, EXIT_INTERRUPTED = 0, 1, 2, 3, 130
EXIT_TERMINATED = 143  # SIGTERM, handled like Ctrl-C


def run(a: argparse.Namespace, argv: Sequence[str] | None) -> int:
    """Run the command ``a.func`` parsed from ``argv``; returns its exit code."""
    terminated: list[int] = []
    try:
        with _sigterm_as_interrupt(terminated):
            return int(a.func(a))
    except BrokenPipeError:
        # the reader of our output went away (``postback-lab plan ... | head``): the work
        # is done; silence the rest of the output instead of a traceback at exit
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return EXIT_OK
    except KeyboardInterrupt:
        if terminated:
            print("terminated; completed attempts are in the log", file=sys.stderr)
            return EXIT_TERMINATED
        print("interrupted; completed attempts are in the log", file=sys.stderr)
        return EXIT_INTERRUPTED
    except Exception as exc:
        if a.debug:
            raise
        if isinstance(exc, (InputError, StoreError, DeliveryError)):
            print(f"postback-lab: error: {exc}", file=sys.stderr)
            return EXIT_FAILED if isinstance(exc, DeliveryError) else EXIT_INPUT
        print(
            f"postback-lab: internal error, please report: {first_line(exc)} "
            f"({_write_traceback(exc, argv)})",
            file=sys.stderr,
        )
        return EXIT_INTERNAL


@contextmanager
def _sigterm_as_interrupt(got: list[int]) -> Iterator[None]:
    """SIGTERM (``kill``, a stopping container or service) acts as Ctrl-C does: a send
    finishes its log, marks its run cancelled and removes its journal; exit code 143."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return

    def on_term(signum: int, frame: FrameType | None) -> None:
        got.append(signum)
        handler = signal.getsignal(signal.SIGINT)
        if callable(handler):  # asyncio's (cancels the running send) or Python's default
            handler(signal.SIGINT, frame)
        else:
            raise KeyboardInterrupt

    previous = signal.signal(signal.SIGTERM, on_term)
    try:
        yield
    finally:
        signal.signal(signal.SIGTERM, previous)


def _write_traceback(exc: BaseException, argv: Sequence[str] | None) -> str:
    """Write the traceback of an unexpected error to a file in the temp folder; says where
    (or why it could not)."""
    args = list(sys.argv[1:] if argv is None else argv)
    try:
        fd, path = tempfile.mkstemp(prefix="postback-lab-traceback-", suffix=".txt")
        with os.fdopen(fd, "w", encoding="utf-8") as f:
            f.write(f"postback-lab {__version__}, Python {sys.version.split()[0]}\n")
            f.write(f"command: postback-lab {' '.join(args)}\n\n")
            traceback.print_exception(exc, file=f)
    except OSError as err:
        return f"the traceback could not be written: {first_line(err)}; run with --debug"
    return f"traceback written to {path}"
