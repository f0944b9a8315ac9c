"""``postback-lab``: the command line.

Exit codes: 0 success; 1 some postbacks were not delivered; 2 bad input (a wrong
argument, file, rule or column, or a ``--db`` file that cannot be used); 3 an internal
error (a bug: the traceback is written to a file to report); 130 interrupted (Ctrl-C),
143 terminated (SIGTERM, handled like Ctrl-C). Errors are
one sentence on stderr; ``--debug`` shows the traceback instead.

One module per family of commands, each adding its commands to the parser and holding
their bodies: ``_plan`` (plan, why, reconcile), ``_send`` (send, backfill, test), ``_log``
(log, audit, import-log), ``_hosts`` (hosts), ``_demo`` (demo, receiver, sample); the
options they share in ``_options``, what they read in ``_inputs``, exit codes in
``_exit``. A body imports the stages it uses when it runs, so building the parser
(``--help``, ``--version``) loads no polars, DuckDB or httpx, and ``plan`` no sender.
"""

from __future__ import annotations

import argparse
from collections.abc import Sequence

from .._version import __version__
from ._demo import add_demo, add_receiver, add_sample
from ._exit import (
    EXIT_FAILED,
    EXIT_INPUT,
    EXIT_INTERNAL,
    EXIT_INTERRUPTED,
    EXIT_OK,
    EXIT_TERMINATED,
    run,
)
from ._hosts import add_hosts
from ._log import add_audit, add_import_log, add_log
from ._plan import add_plan, add_reconcile, add_why
from ._send import add_backfill, add_send, add_test

__all__ = [
    "EXIT_FAILED",
    "EXIT_INPUT",
    "EXIT_INTERNAL",
    "EXIT_INTERRUPTED",
    "EXIT_OK",
    "EXIT_TERMINATED",
    "build_parser",
    "main",
]


def build_parser() -> argparse.ArgumentParser:
    """The parser of every command (each family module adds its own)."""
    p = argparse.ArgumentParser(
        prog="postback-lab",
        description="Find which postbacks should have fired, backfill the missed ones "
        "exactly once, and audit delivery failures.",
    )
    p.add_argument("--debug", action="store_true", help="show tracebacks on errors")
    p.add_argument("--version", action="version", version=f"postback-lab {__version__}")
    sub = p.add_subparsers(dest="command", metavar="COMMAND", required=True)
    for add in (
        add_demo,
        add_plan,
        add_reconcile,
        add_why,
        add_send,
        add_backfill,
        add_audit,
        add_log,
        add_hosts,
        add_import_log,
        add_test,
        add_receiver,
        add_sample,
    ):
        add(sub)
    return p


def main(argv: Sequence[str] | None = None) -> int:
    """Run one command; returns its exit code (see the module docstring)."""
    a = build_parser().parse_args(argv)
    return run(a, argv)
