"""The client's IP address, believing proxy headers only from proxies you trust.

``X-Forwarded-For`` and ``Forwarded`` are plain request headers: any client can send them, with
any address in them. They mean something only when the immediate peer is a proxy you run,
which appends the address *it* saw to the right of whatever the client sent. So the address is
found by walking the list from the right, past your own proxies, to the first hop that is not
one of them: everything further left was written by the client and is ignored.

Only one header is read (``X-Forwarded-For`` by default, or RFC 7239 ``Forwarded``): a proxy
that maintains one of them passes the other through untouched, so reading both would let a
client choose its own address. A header that cannot be parsed where it matters falls back to
the peer address, as if no proxy header were sent.
"""

from __future__ import annotations

import functools
import ipaddress
import re
from collections.abc import Iterable, MutableMapping
from typing import Any, Literal

from sessionauth.errors import ConfigurationError

__all__ = ["ProxyHeader", "client_address"]

ProxyHeader = Literal["x-forwarded-for", "forwarded"]

_IP = ipaddress.IPv4Address | ipaddress.IPv6Address
_Network = ipaddress.IPv4Network | ipaddress.IPv6Network

_UNKNOWN = "unknown"

# RFC 7239 section 4: forwarded-pair = token "=" ( token / quoted-string ), pairs joined by ";"
# within an element and elements by ",", with optional whitespace around the separators.
_TCHAR = r"[!#$%&'*+.^_`|~0-9A-Za-z-]+"
_PAIR = re.compile(rf'[ \t]*({_TCHAR})=({_TCHAR}|"(?:[^"\\]|\\.)*")[ \t]*([;,]|$)')
_NODE = re.compile(r"\[([0-9A-Fa-f:.]+(?:%[^\]]+)?)\](?::\d+)?|([0-9.]+)(?::\d+)?")


@functools.lru_cache(maxsize=64)
def _networks(trusted: tuple[str | _Network | _IP, ...]) -> tuple[_Network, ...]:
    try:
        return tuple(ipaddress.ip_network(entry, strict=False) for entry in trusted)
    except ValueError as exc:
        raise ConfigurationError(f"invalid trusted proxy address or network: {exc}") from exc


def _parse_ip(text: str) -> _IP | None:
    try:
        ip = ipaddress.ip_address(text)
    except ValueError:
        return None
    # An IPv4 client reaching a dual-stack socket appears as ::ffff:a.b.c.d; count it as IPv4.
    if isinstance(ip, ipaddress.IPv6Address) and ip.ipv4_mapped is not None:
        return ip.ipv4_mapped
    return ip


def _forwarded_for_hops(value: str) -> list[_IP | None] | None:
    """Return the ``for=`` address of each element of a ``Forwarded`` value, left to right.

    An element without ``for=``, or whose ``for=`` is ``unknown``, an obfuscated identifier or
    not an address, gives ``None``. A value that breaks the grammar gives ``None`` overall.
    """
    hops: list[_IP | None] = []
    current: _IP | None = None
    in_element = False
    position = 0
    while position < len(value):
        match = _PAIR.match(value, position)
        if match is None or match.end() == position:
            return None
        name, raw, separator = match.groups()
        if raw.startswith('"'):
            raw = re.sub(r"\\(.)", r"\1", raw[1:-1])
        if name.lower() == "for":
            node = _NODE.fullmatch(raw)
            current = None if node is None else _parse_ip(node[1] or node[2])
        in_element = separator == ";"
        if not in_element:
            hops.append(current)
            current = None
        position = match.end()
    if in_element:  # a trailing ";" ends the last element too
        hops.append(current)
    return hops


def _x_forwarded_for_hops(value: str) -> list[_IP | None]:
    hops: list[_IP | None] = []
    for item in value.split(","):
        text = item.strip()
        node = _NODE.fullmatch(text)
        # A bare IPv6 address (the usual form here) or one of the bracketed/port forms.
        hops.append(_parse_ip(text) if node is None else _parse_ip(node[1] or node[2]))
    return hops


def _header(scope: MutableMapping[str, Any], name: bytes) -> str | None:
    # Repeated header lines are one comma-separated list, in order (RFC 9110 section 5.3).
    values = [value.decode("latin-1") for key, value in scope.get("headers", ()) if key == name]
    return ", ".join(values) if values else None


def client_address(
    scope: MutableMapping[str, Any],
    trusted_proxies: Iterable[str | _Network | _IP] = (),
    *,
    header: ProxyHeader = "x-forwarded-for",
) -> str:
    """Return the address of the client that sent the request in ``scope``.

    Args:
        scope: An ASGI HTTP or WebSocket scope.
        trusted_proxies: Addresses and networks (``"10.0.0.0/8"``, ``"::1"``) of the proxies
            in front of the application. Empty (the default) means proxy headers are ignored.
        header: Which proxy header the trusted proxies maintain.

    Returns:
        The client's IP address in canonical form (IPv4-mapped IPv6 as IPv4), or
        ``"unknown"`` when the server reports no peer (a Unix socket, some test clients).

    Raises:
        ConfigurationError: If an entry of ``trusted_proxies`` is not an address or network.
    """
    trusted = _networks(tuple(trusted_proxies))
    client = scope.get("client")
    peer = _parse_ip(client[0]) if client else None
    if peer is None:
        return client[0] if client and client[0] else _UNKNOWN

    def is_trusted(ip: _IP) -> bool:
        return any(ip.version == net.version and ip in net for net in trusted)

    if not trusted or not is_trusted(peer):
        return str(peer)
    if header == "forwarded":
        value = _header(scope, b"forwarded")
        hops = None if value is None else _forwarded_for_hops(value)
    else:
        value = _header(scope, b"x-forwarded-for")
        hops = None if value is None else _x_forwarded_for_hops(value)
    if not hops:
        return str(peer)
    for hop in reversed(hops):
        if hop is None:
            # Unparseable before reaching an untrusted hop: our own proxy chain is garbled.
            return str(peer)
        if not is_trusted(hop):
            return str(hop)
    # Every hop is one of our proxies: the left-most is the furthest we know.
    return str(hops[0])
