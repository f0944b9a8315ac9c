"""One attempt's request: the plan row with its ``{env:NAME}`` secrets filled in, the
idempotency key and content type, and secrets masked again in what comes back."""

from __future__ import annotations

import dataclasses
import json
import os
import urllib.parse
from collections.abc import Mapping

import httpx
import polars as pl

from .._errors import InputError
from ..rules import Spans, fill_env, is_json_body
from ._guard import basic_credentials, mask, split_userinfo
from ._http import Outcome, fetch, stored_body
from ._sign import sign
from ._success import judge
from ._writer import Item


def check_env(frame: pl.DataFrame, environ: Mapping[str, str] | None) -> dict[str, str]:
    """The secrets the plan's rules need ({env:NAME} -> value), read from where the rules
    put them (``env_at``); an InputError naming the variables and rules when one is unset."""
    env = os.environ if environ is None else environ
    need: dict[str, set[str]] = {}
    where = frame.select("rule", "env_at").drop_nulls("env_at").unique()
    for rule, entries in where.iter_rows():
        for _, _, name in json.loads(entries):
            need.setdefault(name, set()).add(rule)
    for rule, name in frame.select("rule", "sign_env").drop_nulls("sign_env").unique().iter_rows():
        need.setdefault(name, set()).add(rule)
    missing = sorted(n for n in need if n not in env)
    if missing:
        rules = sorted({r for n in missing for r in need[n]})
        raise InputError(
            f"the environment variable(s) {', '.join(missing)} are not set; the rule(s) "
            f"{', '.join(repr(r) for r in rules)} use them as {{env:...}} macros; set them "
            "and run again"
        )
    return {n: env[n] for n in need}


def _filled(item: Item, secrets: Mapping[str, str]) -> tuple[str, dict[str, str], str | None]:
    """The URL, headers and body of ``item`` with its rules' secrets filled in (only where
    the rules' templates put them)."""
    url: str = item.get("url")
    headers: dict[str, str] = json.loads(item.get("headers") or "{}")
    body: str | None = item.get("body")
    entries = item.get("env_at")
    if not entries:
        return url, headers, body
    spans: dict[str, Spans] = {}
    for field, offset, name in json.loads(entries):
        spans.setdefault(field, []).append((offset, name))
    url = fill_env(url, spans.pop("url", []), secrets, "url")
    if body is not None and "body" in spans:
        body = fill_env(body, spans.pop("body"), secrets, "json" if is_json_body(body) else "text")
    for field, where in spans.items():
        key = field.removeprefix("header:")
        headers[key] = fill_env(headers[key], where, secrets, "header")
    return url, headers, body


def wrong_host(url: str, host: str) -> str | None:
    """Why ``url`` must not go out when its host is not the plan's (the host the allowlist
    and --deny-private checked), else None."""
    if host and url.startswith(("http://", "https://")):  # the usual case, without parsing
        start = url.index("/") + 2
        end = start + len(host)
        if url[start:end] == host and url[end : end + 1] in ("/", "?", "#", ""):
            return None
    netloc = urllib.parse.urlsplit(url).netloc.rpartition("@")[2].lower()
    if netloc == (host or "").lower():
        return None
    return f"refused: the URL's host {netloc!r} is not the plan's host {host!r}"


def prepare(
    item: Item, secrets: Mapping[str, str], message_id: str | None = None
) -> tuple[str, str, dict[str, str], str | None]:
    """The request of one attempt of ``item``: method, URL, headers and body with its
    rules' secrets filled in, the idempotency key and the content type. The key (and the
    signature's ``webhook-id``) is the dispatch id, or ``message_id`` (a test-fire's own).
    KeyError or ValueError when a secret cannot be filled in."""
    key = item.get("dispatch_id") if message_id is None else message_id
    url, headers, body = _filled(item, secrets)
    if "@" in url:  # user:password@ goes out as Basic auth on every engine
        url, basic = split_userinfo(url)
        if basic is not None and "authorization" not in {k.lower() for k in headers}:
            headers["Authorization"] = basic
    headers["Idempotency-Key"] = key
    if body is not None and "content-type" not in {k.lower() for k in headers}:
        headers["Content-Type"] = (
            "application/json" if is_json_body(body) else "text/plain; charset=utf-8"
        )
    if (env := item.get("sign_env")) is not None:
        headers.update(sign(secrets[env], key, body or ""))
    return item.get("method"), url, headers, body


async def fire(
    pool: httpx.AsyncBaseTransport,
    item: Item,
    environ: Mapping[str, str] | None,
    secrets: Mapping[str, str],
) -> Outcome:
    """Send one attempt of ``item`` over ``pool`` and classify the result."""
    try:
        method, url, headers, body = prepare(item, secrets)
    except (KeyError, ValueError) as exc:
        return Outcome("failed", None, None, f"cannot fill in a secret: {exc}", None)
    if (refused := wrong_host(url, item.get("host"))) is not None:
        return Outcome("failed", None, None, refused, None)
    o = await fetch(pool, method, url, headers, body, item.get("timeout_s"))
    return settle(o, item.get("success"), secrets, basic_credentials(headers))


def settle(
    o: Outcome, success: str | None, secrets: Mapping[str, str], hidden: tuple[str, ...] = ()
) -> Outcome:
    """An answer as the log keeps it: judged by the rule's success check on its first KiB,
    secrets (and the ``hidden`` Basic credential the request carried) masked in its error
    and in the whole answer read (partners echo requests back) and only then cut to the
    first KiB, so no part of a secret is left at the cut; the same for its headers."""
    full = o.response_body
    o = judge(dataclasses.replace(o, response_body=stored_body(full)), success)
    return dataclasses.replace(
        o,
        error=mask(o.error, secrets, hidden) if o.error else o.error,
        response_body=stored_body(mask(full, secrets, hidden)),
        response_headers=stored_body(mask(o.response_headers, secrets, hidden)),
    )
