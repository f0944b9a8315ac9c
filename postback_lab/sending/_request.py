"""One attempt's request: the plan row with its ``{env:NAME}`` secrets filled in, the
idempotency key and content type, and secrets masked again in what comes back."""

from __future__ import annotations

import dataclasses
import json
import os
from collections.abc import Mapping

import httpx
import polars as pl

from .._errors import InputError
from ..rules import env_names, resolve_env
from ._guard import mask
from ._http import Outcome, fetch
from ._writer import Item


def check_env(frame: pl.DataFrame, environ: Mapping[str, str] | None) -> dict[str, str]:
    """The secrets the plan needs ({env:NAME} -> value); an InputError if one is unset."""
    env = os.environ if environ is None else environ
    names: set[str] = set()
    for col in ("url", "headers", "body"):
        for text in frame[col].drop_nulls().unique().to_list():
            names.update(env_names(text))
    missing = sorted(n for n in names if n not in env)
    if missing:
        raise InputError(
            f"the plan needs the environment variable(s) {', '.join(missing)} "
            "({env:...} macros); set them and run again"
        )
    return {n: env[n] for n in names}


async def fire(
    pool: httpx.AsyncBaseTransport,
    item: Item,
    environ: Mapping[str, str] | None,
    secrets: Mapping[str, str],
) -> Outcome:
    """Send one attempt of ``item`` over ``pool`` and classify the result."""
    try:
        url = resolve_env(item.get("url"), environ)
        headers = {
            k: resolve_env(v, environ) for k, v in json.loads(item.get("headers") or "{}").items()
        }
        body = item.get("body")
        body = resolve_env(body, environ) if body is not None else None
    except KeyError as exc:
        return Outcome("failed", None, None, f"environment variable {exc.args[0]} is not set", None)
    headers["Idempotency-Key"] = item.get("dispatch_id")
    if body is not None and "content-type" not in {k.lower() for k in headers}:
        headers["Content-Type"] = (
            "application/json"
            if body.lstrip().startswith(("{", "["))
            else "text/plain; charset=utf-8"
        )
    o = await fetch(pool, item.get("method"), url, headers, body, item.get("timeout_s"))
    if secrets and (o.error or o.response_body):  # partners echo requests back
        o = dataclasses.replace(
            o, error=mask(o.error, secrets), response_body=mask(o.response_body, secrets)
        )
    return o
