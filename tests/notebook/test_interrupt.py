"""Interrupting a backfill in a notebook: the cell stops with one line that says what the
run did (no CancelledError traceback, no second message on stderr), the run is logged as
cancelled, and the same call again sends only what is still missing. Both ``await
pbl.backfill(...)`` and ``pbl.backfill_sync(...)`` (which runs in a worker thread)."""

from __future__ import annotations

import json
import re

import pytest
from jupyter_client.manager import start_new_kernel

SETUP = """
import socket, tempfile
from datetime import UTC, datetime, timedelta
from pathlib import Path
import polars as pl
import postback_lab as pbl
s = socket.socket(); s.bind(("127.0.0.1", 0)); port = s.getsockname()[1]; s.close()
rules = pbl.read_rules([{"name": "r", "type": "conversion", "fire_on": "approved",
                         "url": f"http://127.0.0.1:{port}/pb?t={{transaction_id}}"}])
events = pl.DataFrame({"transaction_id": [f"t{i}" for i in range(20)],
                       "event_type": "conversion", "status": "approved",
                       "occurred_at": datetime.now(UTC) - timedelta(minutes=1)})
plan = pbl.build_plan(events, rules)
log = pbl.LogStore(Path(tempfile.mkdtemp()) / "log.duckdb")
OFF = pbl.sending.Breaker.off()
"""


@pytest.fixture(scope="module")
def kernel():
    km, kc = start_new_kernel(kernel_name="python3")
    try:
        reply = kc.execute_interactive(SETUP, timeout=120)
        assert reply["content"]["status"] == "ok"
        yield km, kc
    finally:
        kc.stop_channels()
        km.shutdown_kernel(now=True)


def _text(content: dict) -> str:
    """A message's text with tqdm's figure spaces as spaces."""
    return json.dumps(content, ensure_ascii=False).replace("\u2007", " ")


def _interrupt_when_retrying(km, kc, code: str) -> tuple[list[dict], list[str]]:
    """Run ``code``; once the progress bar says all 20 postbacks wait for a retry (they
    fail and wait 5 s, then 5 minutes, for their next try), interrupt. The errors and
    stderr."""
    msg_id = kc.execute(code)
    errors, stderr, interrupted = [], [], False
    while True:
        msg = kc.get_iopub_msg(timeout=120)
        if msg["parent_header"].get("msg_id") != msg_id:
            continue
        kind, content = msg["msg_type"], msg["content"]
        if kind == "comm_msg" and not interrupted and "retrying 20, next " in _text(content):
            km.interrupt_kernel()
            interrupted = True
        elif kind == "error":
            errors.append(content)
        elif kind == "stream" and content["name"] == "stderr":
            stderr.append(content["text"])
        elif kind == "status" and content["execution_state"] == "idle":
            assert interrupted, "the run ended before it was interrupted"
            return errors, stderr


@pytest.mark.parametrize(
    "call",
    [
        # the circuit breaker off: it would pause the down host after 10 failures
        "await pbl.backfill(plan, log, retry=pbl.Retry(), max_duration=None, breaker=OFF)",
        "pbl.backfill_sync(plan, log, retry=pbl.Retry(), max_duration=None, breaker=OFF)",
    ],
)
def test_interrupt_stops_with_one_line(kernel, call):
    km, kc = kernel
    errors, stderr = _interrupt_when_retrying(km, kc, call)
    assert len(errors) == 1
    error = errors[0]
    assert error["ename"] == "KeyboardInterrupt"
    assert len(error["traceback"]) == 2  # IPython's "%tb" hint, then our one line
    line = error["traceback"][1]
    assert "interrupted run " in line and "(cancelled): 20 postbacks, 0 delivered" in line
    assert re.search(r"\(failed attempts: (20|40) connection_error\)", line), line
    assert "sends only what is still missing" in line
    assert "CancelledError" not in json.dumps(errors) and not "".join(stderr).strip()
    printed: list[str] = []
    states = kc.execute_interactive(
        "print(log.sql('SELECT state FROM runs ORDER BY started_at DESC LIMIT 1').item())",
        timeout=60,
        output_hook=lambda m: printed.append(m["content"].get("text", "")),
    )
    assert states["content"]["status"] == "ok" and "".join(printed).strip() == "cancelled"
