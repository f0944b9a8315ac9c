"""Outbound guards: a host allowlist, a private-address guard (after DNS resolution), and
masking of secrets in whatever a partner echoes back."""

from __future__ import annotations

import asyncio
import base64
import fnmatch
import functools
import ipaddress
import json
import re
import socket
import urllib.parse
from collections.abc import Iterable, Mapping

import polars as pl

from .._errors import InputError
from .._util import USERINFO, masked_userinfo


def check_allowlist(hosts: Iterable[str], allow: Iterable[str] | None) -> None:
    """Every host of the plan matches a pattern of ``allow`` (``*.example.com`` works), or
    an InputError naming the ones that do not."""
    if allow is None:
        return
    patterns = [p.lower() for p in allow]
    bad = sorted(
        h
        for h in set(hosts)
        if not any(
            fnmatch.fnmatch(h.lower(), p) or fnmatch.fnmatch(h.lower().rsplit(":", 1)[0], p)
            for p in patterns
        )
    )
    if bad:
        raise InputError(
            f"hosts not in the allowlist: {', '.join(bad[:10])}"
            f"{' …' if len(bad) > 10 else ''}; add them with --allow-host or "
            "remove their rules"
        )


def _blocked(ip: str) -> bool:
    addr = ipaddress.ip_address(ip.split("%", 1)[0])
    if isinstance(addr, ipaddress.IPv6Address) and addr.ipv4_mapped is not None:
        addr = addr.ipv4_mapped
    return (
        addr.is_private
        or addr.is_loopback
        or addr.is_link_local
        or addr.is_reserved
        or addr.is_multicast
        or addr.is_unspecified
    )


async def private_reason(host: str) -> str | None:
    """Why ``host`` (``name[:port]``) must not be contacted under --deny-private, or None.
    Names are resolved first, so a public-looking name pointing inside is caught too."""
    name = host
    if name.startswith("["):
        name = name[1:].split("]", 1)[0]
    elif name.count(":") == 1:
        name = name.rsplit(":", 1)[0]
    try:
        infos = await asyncio.get_running_loop().getaddrinfo(name, None, type=socket.SOCK_STREAM)
    except OSError as exc:
        return f"cannot resolve {name}: {exc.strerror or exc}"
    for info in infos:
        ip = str(info[4][0])
        if _blocked(ip):
            return (
                f"blocked by --deny-private: {name} resolves to {ip}, a private, "
                "loopback, link-local or reserved address"
            )
    return None


_USERINFO = re.compile(USERINFO)


def mask(text: str | None, secrets: Mapping[str, str], hidden: tuple[str, ...] = ()) -> str | None:
    """``text`` with every secret value replaced by its ``{env:NAME}`` placeholder and
    every ``hidden`` value (a Basic credential, see ``basic_credentials``) by ``***``, also
    where they read percent-encoded, JSON-escaped or half-decoded (as partners and their
    frameworks echo a request back), and the password of any ``user:password@`` in a URL
    replaced by ``***``."""
    if not text:
        return text
    if secrets:
        for pattern, placeholder in _patterns(tuple(secrets.items())):
            text = pattern.sub(placeholder, text)  # {env:NAME}: no backslash
    if hidden:
        for pattern, _ in _patterns(tuple(("", v) for v in hidden)):
            text = pattern.sub("***", text)
    if "@" in text:
        text = _USERINFO.sub(r"\1***@", text)
    return text


@functools.lru_cache(maxsize=8)
def _patterns(secrets: tuple[tuple[str, str], ...]) -> list[tuple[re.Pattern[str], str]]:
    """One pattern per secret (4 characters or more) matching it with each character as
    it is, percent-encoded (either case), ``+`` for a space, or JSON-escaped."""
    return [
        (re.compile("".join(_char(c) for c in value)), f"{{env:{name}}}")
        for name, value in sorted(secrets, key=lambda kv: -len(kv[1]))
        if len(value) >= 4
    ]


def _char(c: str) -> str:
    """A character of a secret as it may read: as it is, percent-encoded (either case),
    JSON-escaped, ``+`` for a space, ``\\/`` for a slash, UTF-8 read as Latin-1."""
    forms = {
        re.escape(c),
        re.escape(json.dumps(c)[1:-1]),
        "".join(f"%(?:{b:02X}|{b:02x})" for b in c.encode("utf-8")),
    }
    if not c.isascii():  # its UTF-8 bytes read as Latin-1, as servers decode headers
        latin = c.encode("utf-8").decode("latin-1")
        forms |= {re.escape(latin), re.escape(json.dumps(latin)[1:-1])}
    if c == " ":
        forms.add(re.escape("+"))
    if c == "/":
        forms.add(re.escape("\\/"))
    return "(?:" + "|".join(sorted(forms, key=len, reverse=True)) + ")"


def basic_credentials(headers: Mapping[str, str]) -> tuple[str, ...]:
    """What an ``Authorization: Basic`` header that went out carries (the one a URL's
    ``user:password@`` becomes, or one written in the rules): its base64 credential and
    the password in it, for ``mask`` to hide where a partner echoes them."""
    for key, value in headers.items():
        if key.lower() != "authorization" or value[:6].lower() != "basic ":
            continue
        token = value[6:].strip()
        try:
            password = base64.b64decode(token, validate=True).decode("utf-8").partition(":")[2]
        except (ValueError, UnicodeDecodeError):
            return (token,)
        return (token, password) if password else (token,)
    return ()


def masked_urls(url: pl.Expr) -> pl.Expr:
    """The URLs as the log and the journal keep them: a ``user:password@`` password
    replaced by ``***`` (vectorised; most URLs have none)."""
    return masked_userinfo(url)


def split_userinfo(url: str) -> tuple[str, str | None]:
    """A URL without its ``user:password@`` and the ``Authorization: Basic`` value that
    carries them instead (None when the URL has none), so both engines send the same."""
    parts = urllib.parse.urlsplit(url)
    if "@" not in parts.netloc:
        return url, None
    userinfo, _, host = parts.netloc.rpartition("@")
    user, _, password = userinfo.partition(":")
    raw = f"{urllib.parse.unquote(user)}:{urllib.parse.unquote(password)}"
    token = base64.b64encode(raw.encode()).decode("ascii")
    return url.replace(parts.netloc, host, 1), f"Basic {token}"
