"""In a Jupyter kernel, postback_lab's own errors show as one short message (no traceback
through the library); other exceptions keep IPython's full traceback."""

from __future__ import annotations

import nbformat
from nbclient import NotebookClient


def _run(*sources: str) -> list[dict]:
    nb = nbformat.v4.new_notebook(cells=[nbformat.v4.new_code_cell(s) for s in sources])
    NotebookClient(nb, timeout=120, kernel_name="python3", allow_errors=True).execute()
    return [o for c in nb.cells for o in c.outputs if o.output_type == "error"]


def test_our_errors_are_one_line_and_others_keep_their_traceback():
    ours, theirs = _run(
        "import postback_lab as pbl",
        "pbl.read_rules([{'name': 'x', 'url': 'ftp://h.example/'}])",
        "def f():\n    raise ValueError('boom')\nf()",
    )
    assert ours.ename == "RuleValidationError"
    assert "http" in ours.evalue
    # IPython's own hint ("use %tb to see the full traceback"), then the message
    assert len(ours.traceback) == 2 and "%tb" in ours.traceback[0]
    assert "read_rules" not in "".join(ours.traceback)  # no frames of the library
    assert theirs.ename == "ValueError" and len(theirs.traceback) > 1


def test_an_interrupt_inside_a_send_is_one_line_elsewhere_a_traceback():
    inside, outside = _run(
        "import asyncio, postback_lab as pbl\nfrom postback_lab._util import run_sync",
        "async def stopped():\n    raise asyncio.CancelledError()\nrun_sync(stopped())",
        "raise KeyboardInterrupt()",
    )
    assert inside.ename == "KeyboardInterrupt"
    assert len(inside.traceback) == 2 and "sends only what is still missing" in inside.traceback[1]
    assert outside.ename == "KeyboardInterrupt" and len(outside.traceback) > 2
