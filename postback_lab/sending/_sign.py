"""Request signing by the Standard Webhooks scheme (https://www.standardwebhooks.com/):
``webhook-id`` (the dispatch id, stable across retries), ``webhook-timestamp`` (Unix
seconds) and ``webhook-signature: v1,<base64 HMAC-SHA256 of "id.timestamp.body">``, keyed
by a ``whsec_``-prefixed base64 secret read from the environment at send time."""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import time

PREFIX = "whsec_"


def secret_bytes(secret: str) -> bytes:
    """The key of a ``whsec_...`` secret (base64, padding optional); ValueError if the
    text is not one."""
    text = secret.strip().removeprefix(PREFIX)
    try:
        key = base64.b64decode(text + "=" * (-len(text) % 4), validate=True)
    except (binascii.Error, ValueError):
        raise ValueError("the signing secret is not base64 (expected whsec_<base64>)") from None
    if not key:
        raise ValueError("the signing secret is empty")
    return key


def sign(secret: str, msg_id: str, body: str, now: float | None = None) -> dict[str, str]:
    """The three Standard Webhooks headers for one request."""
    stamp = str(int(time.time() if now is None else now))
    digest = hmac.new(
        secret_bytes(secret), f"{msg_id}.{stamp}.{body}".encode(), hashlib.sha256
    ).digest()
    return {
        "webhook-id": msg_id,
        "webhook-timestamp": stamp,
        "webhook-signature": "v1," + base64.b64encode(digest).decode(),
    }
