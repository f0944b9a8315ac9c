"""Sending: fire a dispatch plan with delays, limits, retries and crash-safe logging.

``send`` (async) and ``send_sync`` take a plan and a log; ``SendOptions`` holds how a run
goes (limits, retry schedule, timing, guards), validated once; ``SendResult`` says what
happened. A failed HTTP attempt is a log row, never an exception.
"""

from ..plan import PlanSource
from ..store import LogSource
from ._alerts import Alert, exhausted_alert, host_paused_alert, post_alert, targets_of
from ._breaker import Breaker
from ._http import ENGINES, Engine
from ._limits import Clock, FakeClock
from ._options import Replay, SendOptions, Timing
from ._recheck import rereader
from ._result import SendResult
from ._retry import Retry, parse_retry_after, rule_policies
from ._run import (
    on_cancel,
    pick_options,
    run_send,
    send,
    send_sync,
    with_goals,
    with_rule_policies,
)
from ._test_fire import TEST, TestFire, test_fire, test_fire_sync, test_rule, test_rule_sync

__all__ = [
    "ENGINES",
    "TEST",
    "Alert",
    "Breaker",
    "Clock",
    "Engine",
    "FakeClock",
    "LogSource",
    "PlanSource",
    "Replay",
    "Retry",
    "SendOptions",
    "SendResult",
    "TestFire",
    "Timing",
    "exhausted_alert",
    "host_paused_alert",
    "on_cancel",
    "parse_retry_after",
    "pick_options",
    "post_alert",
    "rereader",
    "rule_policies",
    "run_send",
    "send",
    "send_sync",
    "targets_of",
    "test_fire",
    "test_fire_sync",
    "test_rule",
    "test_rule_sync",
    "with_goals",
    "with_rule_policies",
]
