"""Outbound guards: a host allowlist, a private-address guard (after DNS resolution), and
masking of secrets in whatever a partner echoes back."""

from __future__ import annotations

import asyncio
import fnmatch
import ipaddress
import socket
from collections.abc import Iterable, Mapping

from .._errors import InputError


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


def mask(text: str | None, secrets: Mapping[str, str]) -> str | None:
    """``text`` with every secret value replaced by its ``{env:NAME}`` placeholder."""
    if not text or not secrets:
        return text
    for name, value in secrets.items():
        if len(value) >= 4 and value in text:
            text = text.replace(value, f"{{env:{name}}}")
    return text
