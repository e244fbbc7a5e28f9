"""Where a delivery may go: URL checks at creation, and the address check on every attempt.

A URL is ``https://`` (``http://`` only when allowed), at most :data:`MAX_URL_LENGTH` characters,
with a host and no user info. On every attempt the host is resolved, and **every** address it
resolves to must be public (not private, loopback, link-local, multicast, reserved, unspecified,
shared or an IPv4-mapped form of one) unless private addresses are allowed; the request then
connects to the checked address itself (the Host header and TLS name stay the URL's), so a DNS
answer that changes between the check and the connection (rebinding) cannot redirect it.
"""

from __future__ import annotations

import asyncio
import ipaddress
import socket
from collections.abc import Awaitable, Callable
from urllib.parse import urlsplit

from webhooks.errors import BlockedAddress, InvalidArgument

__all__ = ["MAX_URL_LENGTH", "Resolver", "check_url", "is_public", "resolve", "system_resolver"]

MAX_URL_LENGTH = 2048

#: ``(host, port) -> addresses``; tests inject one (a DNS name answering a private address)
Resolver = Callable[[str, int], Awaitable[list[str]]]

IPAddress = ipaddress.IPv4Address | ipaddress.IPv6Address

_SHARED = ipaddress.ip_network("100.64.0.0/10")  # carrier-grade NAT: not global, not "private" in 3.11


async def system_resolver(host: str, port: int) -> list[str]:
    infos = await asyncio.get_running_loop().getaddrinfo(host, port, type=socket.SOCK_STREAM)
    return list(dict.fromkeys(str(info[4][0]) for info in infos))


def is_public(address: IPAddress) -> bool:
    """True for a globally routable unicast address."""
    if isinstance(address, ipaddress.IPv6Address):
        mapped = address.ipv4_mapped or address.sixtofour
        if mapped is not None:
            return is_public(mapped)
        if address.teredo is not None:
            return False
    if isinstance(address, ipaddress.IPv4Address) and address in _SHARED:
        return False
    return address.is_global and not (
        address.is_private
        or address.is_loopback
        or address.is_link_local
        or address.is_multicast
        or address.is_reserved
        or address.is_unspecified
    )


def check_url(url: str, *, allow_http: bool) -> tuple[str, str, int]:
    """Validate an endpoint URL; returns ``(scheme, host, port)`` or raises ``InvalidArgument``."""
    if not isinstance(url, str) or not url or len(url) > MAX_URL_LENGTH:
        raise InvalidArgument("url", f"url must be 1 to {MAX_URL_LENGTH} characters")
    if any(ch.isspace() or ord(ch) < 0x20 or ord(ch) == 0x7F for ch in url):
        raise InvalidArgument("url", "url must not contain spaces or control characters")
    try:
        parts = urlsplit(url)
        port = parts.port
    except ValueError:
        raise InvalidArgument("url", "url is not a valid URL") from None
    schemes = ("https", "http") if allow_http else ("https",)
    if parts.scheme not in schemes:
        raise InvalidArgument("url", "url must start with https://" + (" or http://" if allow_http else ""))
    if not parts.hostname or parts.username is not None or parts.password is not None:
        raise InvalidArgument("url", "url must name a host and carry no user or password")
    if parts.fragment:
        raise InvalidArgument("url", "url must not carry a #fragment")
    return parts.scheme, parts.hostname, port or (443 if parts.scheme == "https" else 80)


async def resolve(host: str, port: int, resolver: Resolver, *, allow_private: bool) -> str:
    """The address to connect to: ``host`` resolved, every answer checked; raises ``BlockedAddress``."""
    try:
        literal: IPAddress | None = ipaddress.ip_address(host)
    except ValueError:
        literal = None
    if literal is not None:
        candidates = [literal]
    else:
        try:
            answers = await resolver(host, port)
        except (OSError, UnicodeError) as exc:
            raise BlockedAddress(f"cannot resolve {host}: {type(exc).__name__}") from None
        candidates = []
        for answer in answers:
            try:
                candidates.append(ipaddress.ip_address(answer.split("%", 1)[0]))
            except ValueError:
                raise BlockedAddress(f"{host} resolved to an invalid address") from None
        if not candidates:
            raise BlockedAddress(f"{host} resolved to no address")
    if not allow_private:
        for address in candidates:
            if not is_public(address):
                raise BlockedAddress(f"{host} resolves to a non-public address ({address})")
    return str(candidates[0])
