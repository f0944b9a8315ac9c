"""The exception tree of postback_lab: one root, one subclass per stage.

PostbackLabError
├── InputError                  bad input from the user (CLI exit code 2)
│   ├── EventsError             an events source cannot be read or lacks a column
│   ├── RuleValidationError     postbacks.yaml is wrong (carries every problem found)
│   ├── LogImportError          a platform postback-log export cannot be read
│   └── PlanError               a plan file or frame is not a dispatch plan
├── StoreError                  the DuckDB log cannot be opened or written (exit code 2)
│   └── StoreLockedError        another process holds the DuckDB file
└── DeliveryError               raised by SendResult.raise_on_failures() (exit code 1)
    └── UnlinkedImportsError    backfill stopped: imported rows may be its deliveries

JournalWarning (a UserWarning): a crash journal had damaged lines, skipped and named.

A failed HTTP attempt is a log row, never an exception. Anything else raised is a bug:
the CLI exits 3 and writes the traceback to a file to report.
"""

from __future__ import annotations

import difflib
from collections.abc import Iterable


class PostbackLabError(Exception):
    """Root of every error postback_lab raises on purpose."""


class InputError(PostbackLabError):
    """The input given by the user is wrong; the message says where and how."""


class EventsError(InputError):
    """An events source cannot be read, or a required column is missing."""


class PlanError(InputError):
    """A plan file or frame does not have the dispatch-plan columns."""


class LogImportError(InputError):
    """A platform postback-log export cannot be read or mapped."""


class RuleValidationError(InputError):
    """One or more problems in a rules file; ``problems`` lists them all."""

    def __init__(self, problems: list[str]) -> None:
        self.problems = list(problems)
        if len(self.problems) == 1:
            msg = self.problems[0]
        else:
            msg = f"{len(self.problems)} problems in the rules:\n" + "\n".join(
                f"  - {p}" for p in self.problems
            )
        super().__init__(msg)


class StoreError(PostbackLabError):
    """The DuckDB attempt log cannot be opened or written."""


class StoreLockedError(StoreError):
    """Another process holds the DuckDB file open for writing."""


class DeliveryError(PostbackLabError):
    """Some postbacks of a send were not delivered (see SendResult)."""


class UnlinkedImportsError(DeliveryError):
    """A backfill stopped before sending: imported log rows that link to no dispatch
    could be deliveries of what it would send (pass ``allow_unlinked=True`` to send)."""


class JournalWarning(UserWarning):
    """A crash journal had damaged lines; they were skipped, the rest recovered."""


def closest(name: str, choices: Iterable[str]) -> str | None:
    """The valid choice closest to a misspelt ``name``, or None when nothing is close."""
    choices = list(choices)
    match = difflib.get_close_matches(name, choices, n=1, cutoff=0.6)
    if match:
        return match[0]
    lowered = {c.lower(): c for c in choices}
    return lowered.get(name.lower())


def did_you_mean(name: str, choices: Iterable[str]) -> str:
    """`` (did you mean 'x'?)`` or, with nothing close, the list of valid choices."""
    choices = sorted(choices)
    best = closest(name, choices)
    if best is not None:
        return f" (did you mean {best!r}?)"
    return f" (valid: {', '.join(choices)})"
