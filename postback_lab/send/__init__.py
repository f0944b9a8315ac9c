"""Send: fire a dispatch plan with delays, limits, retries and crash-safe logging."""

from ._limits import Clock, FakeClock
from ._result import SendResult
from ._retry import Retry, parse_retry_after
from ._sender import send, send_sync

__all__ = ["Clock", "FakeClock", "Retry", "SendResult", "parse_retry_after", "send", "send_sync"]
