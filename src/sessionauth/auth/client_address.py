"""The client's IP address and scheme, believing proxy headers only from proxies you trust.

``X-Forwarded-For`` and ``Forwarded`` are plain request headers: any client can send them, with
any address in them. They mean something only when the immediate peer is a proxy you run,
which appends the address *it* saw to the right of whatever the client sent. So the address is
found by walking the list from the right, past your own proxies, to the first hop that is not
one of them: everything further left was written by the client and is ignored.

Only one header is read (``X-Forwarded-For`` by default, or RFC 7239 ``Forwarded``): a proxy
that maintains one of them passes the other through untouched, so reading both would let a
client choose its own address. A header that cannot be parsed where it matters falls back to
the peer address, as if no proxy header were sent; a value that is not an IP address is never
returned, so it can neither be stored nor become a throttling key.

The scheme comes from the same hop: ``proto=`` of the ``Forwarded`` element that named the
client, or ``X-Forwarded-Proto`` (one value, or one per ``X-Forwarded-For`` hop). Both are
resolved here and applied to the scope once by :class:`TrustedProxyMiddleware`, so the ASGI
server's own proxy handling stays off and nothing reads the headers twice.

A trusted set that covers every unicast IPv4 address (``0.0.0.0/0``, ``0.0.0.0/1`` with
``128.0.0.0/1``, ``::ffff:0:0/96``, or just ``0.0.0.0/1,128.0.0.0/2,192.0.0.0/3``) or every
global unicast IPv6 address (``2000::/3``, ``::/1``, ``::/0``) is refused: it trusts every
client on the internet to name itself, exactly like ``*``. Multicast and reserved ranges left
out change nothing, since no client connects from them.
"""

from __future__ import annotations

import functools
import ipaddress
import re
from collections.abc import Callable, Iterable, MutableMapping
from dataclasses import dataclass
from typing import Any, Literal

from starlette.types import ASGIApp, Receive, Scope, Send

from sessionauth.errors import ConfigurationError

__all__ = [
    "ProxyHeader",
    "TrustedProxyMiddleware",
    "apply_proxy_headers",
    "client_address",
    "covers_every_address",
    "trusted_networks",
]

ProxyHeader = Literal["x-forwarded-for", "forwarded"]

_IP = ipaddress.IPv4Address | ipaddress.IPv6Address
_Network = ipaddress.IPv4Network | ipaddress.IPv6Network

_UNKNOWN = "unknown"
_SCHEMES = {"http": ("http", "https"), "websocket": ("ws", "wss")}
_MAPPED = ipaddress.IPv6Network("::ffff:0:0/96")
# Every address a client can connect from: IPv4 but multicast (224/4) and reserved (240/4),
# and IPv6's global unicast range (RFC 4291; everything else is local, multicast or unassigned).
_UNICAST_V4 = tuple(ipaddress.IPv4Network(n) for n in ("0.0.0.0/1", "128.0.0.0/2", "192.0.0.0/3"))
_UNICAST_V6 = (ipaddress.IPv6Network("2000::/3"),)

# RFC 7239 section 4: forwarded-pair = token "=" ( token / quoted-string ), pairs joined by ";"
# within an element and elements by ",", with optional whitespace around the separators.
_TCHAR = r"[!#$%&'*+.^_`|~0-9A-Za-z-]+"
_PAIR = re.compile(rf'[ \t]*({_TCHAR})=({_TCHAR}|"(?:[^"\\]|\\.)*")[ \t]*([;,]|$)')
# One element of a Forwarded value and the comma (or end) after it: anything but commas, and
# quoted strings (which may hold them). Empty elements match too: they break the grammar.
_ELEMENT = re.compile(r'((?:[^",]|"(?:[^"\\]|\\.)*")*)(,|$)')
_NODE = re.compile(r"\[([0-9A-Fa-f:.]+(?:%[^\]]+)?)\](?::\d+)?|([0-9.]+)(?::\d+)?")


def _as_ipv4(network: _Network) -> _Network:
    # Dual-stack sockets show IPv4 clients as ::ffff:a.b.c.d, and _parse_ip reads them as IPv4:
    # a mapped network means the IPv4 addresses inside it.
    if isinstance(network, ipaddress.IPv6Network) and network.subnet_of(_MAPPED):
        first = network.network_address.ipv4_mapped
        assert first is not None  # noqa: S101 - inside ::ffff:0:0/96 by the test above
        return ipaddress.IPv4Network(f"{first}/{network.prefixlen - 96}")
    return network


@functools.lru_cache(maxsize=64)
def trusted_networks(trusted: tuple[str | _Network | _IP, ...]) -> tuple[_Network, ...]:
    """Parse trusted proxy entries into networks, IPv4-mapped IPv6 ones as IPv4.

    Args:
        trusted: Addresses and networks (``"10.0.0.0/8"``, ``"::1"``).

    Raises:
        ConfigurationError: If an entry is not an address or network, or is ``*``, or if
            together they cover every unicast IPv4 or IPv6 address (see
            :func:`covers_every_address`).
    """
    refusal = (
        "trusted proxies cover every IPv4 or IPv6 address a client can connect from: every "
        "client could forge its address in X-Forwarded-For and escape throttling; list your "
        "proxies' addresses"
    )
    if "*" in trusted:
        raise ConfigurationError(refusal)
    try:
        networks = tuple(_as_ipv4(ipaddress.ip_network(e, strict=False)) for e in trusted)
    except ValueError as exc:
        raise ConfigurationError(f"invalid trusted proxy address or network: {exc}") from exc
    if covers_every_address(networks):
        raise ConfigurationError(refusal)
    return networks


def covers_every_address(networks: Iterable[_Network]) -> bool:
    """Return whether ``networks`` together contain every unicast IPv4 or IPv6 address.

    IPv4-mapped IPv6 networks (``::ffff:0:0/96``) count as the IPv4 addresses they map.
    """
    mapped = [_as_ipv4(network) for network in networks]
    v4 = list(
        ipaddress.collapse_addresses(n for n in mapped if isinstance(n, ipaddress.IPv4Network))
    )
    v6 = list(
        ipaddress.collapse_addresses(n for n in mapped if isinstance(n, ipaddress.IPv6Network))
    )
    # Collapsed networks are maximal, so a block the union covers lies inside one of them.
    return all(any(block.subnet_of(n) for n in v4) for block in _UNICAST_V4) or all(
        any(block.subnet_of(n) for n in v6) for block in _UNICAST_V6
    )


def _parse_ip(text: str) -> _IP | None:
    try:
        ip = ipaddress.ip_address(text)
    except ValueError:
        return None
    # An IPv4 client reaching a dual-stack socket appears as ::ffff:a.b.c.d; count it as IPv4.
    if isinstance(ip, ipaddress.IPv6Address) and ip.ipv4_mapped is not None:
        return ip.ipv4_mapped
    # A %zone names a link on the host that saw it, in free text: never part of a client's
    # address (it would be stored, and each spelling would be a throttle bucket of its own).
    if isinstance(ip, ipaddress.IPv6Address) and ip.scope_id is not None:
        return ipaddress.IPv6Address(ip.packed)
    return ip


@dataclass(frozen=True, slots=True)
class _Hop:
    address: _IP | None
    proto: str | None = None


def _forwarded_hop(element: str) -> _Hop | None:
    """Return the ``for=`` address and ``proto=`` of one ``Forwarded`` element.

    An element without ``for=``, or whose ``for=`` is ``unknown``, an obfuscated identifier or
    not an address, has no address. An element that breaks the grammar gives ``None``.
    """
    address: _IP | None = None
    proto: str | None = None
    position = 0
    while position < len(element):
        match = _PAIR.match(element, position)
        if match is None or match.end() == position or match[3] == ",":
            return None
        name, raw = match[1].lower(), match[2]
        if raw.startswith('"'):
            raw = re.sub(r"\\(.)", r"\1", raw[1:-1])
        if name == "for":
            node = _NODE.fullmatch(raw)
            address = None if node is None else _parse_ip(node[1] or node[2])
        elif name == "proto":
            proto = raw.lower()
        position = match.end()
    return _Hop(address, proto)


def _forwarded_elements(value: str | None) -> list[str]:
    """Split a ``Forwarded`` value into its elements; an unclosed quote makes one bad element."""
    if not value:
        return []
    if '"' not in value:
        return value.split(",")  # no quoted string, so every comma ends an element
    elements, position = [], 0
    for match in _ELEMENT.finditer(value):
        if match.start() != position:
            return ['"']  # the grammar breaks where no element could start: unparseable
        elements.append(match[1])
        position = match.end()
        if not match[2]:
            break
    return elements


def _x_forwarded_hop(item: str, proto: str | None) -> _Hop:
    text = item.strip()
    node = _NODE.fullmatch(text)
    # A bare IPv6 address (the usual form here) or one of the bracketed/port forms.
    address = _parse_ip(text) if node is None else _parse_ip(node[1] or node[2])
    return _Hop(address, proto.strip().lower() or None if proto is not None else None)


def _hops_from_the_right(
    scope: MutableMapping[str, Any], header: ProxyHeader
) -> tuple[int, Callable[[int], _Hop | None]]:
    """Return how many hops the forwarding header lists, and a parser of hop ``i`` (0 = left).

    Hops are parsed only when asked for: the walk from the right stops at the first untrusted
    hop, and whatever a client wrote to the left of it (any amount of forged hops) is split
    by C code and never parsed.
    """
    if header == "forwarded":
        elements = _forwarded_elements(_header(scope, b"forwarded"))
        return len(elements), lambda index: _forwarded_hop(elements[index])
    items = (_header(scope, b"x-forwarded-for") or "").split(",")
    protos = _header(scope, b"x-forwarded-proto")
    schemes = [] if protos is None else protos.split(",")
    # One value for the whole chain (proxies that overwrite), or one per hop (that append).
    if len(schemes) not in (1, len(items)):
        schemes = []

    def hop(index: int) -> _Hop:
        proto = schemes[0 if len(schemes) == 1 else index] if schemes else None
        return _x_forwarded_hop(items[index], proto)

    return len(items), hop


def _header(scope: MutableMapping[str, Any], name: bytes) -> str | None:
    # Repeated header lines are one comma-separated list, in order (RFC 9110 section 5.3).
    values = [value.decode("latin-1") for key, value in scope.get("headers", ()) if key == name]
    return ", ".join(values) if values else None


def _resolve(
    scope: MutableMapping[str, Any], trusted: tuple[_Network, ...], header: ProxyHeader
) -> tuple[str, str | None]:
    """Return the client's address and, if a trusted proxy reported it, its scheme."""
    client = scope.get("client")
    peer = _parse_ip(client[0]) if client else None
    if peer is None:
        # No peer (a Unix socket) or one that is not an address: never a key of its own.
        return _UNKNOWN, None

    def is_trusted(ip: _IP) -> bool:
        return any(ip.version == net.version and ip in net for net in trusted)

    if not trusted or not is_trusted(peer):
        return str(peer), None
    count, hop_at = _hops_from_the_right(scope, header)
    nearest: str | None = None
    hop: _Hop | None = None
    for index in range(count - 1, -1, -1):
        hop = hop_at(index)
        if hop is None:
            # Our own proxies' part of the chain breaks the grammar: it cannot be followed.
            return str(peer), nearest
        if index == count - 1:
            # The right-most hop was written by the peer, a trusted proxy: its scheme holds
            # even when the addresses cannot be followed.
            nearest = hop.proto
        if hop.address is None:
            # Unparseable before reaching an untrusted hop: our own proxy chain is garbled.
            return str(peer), nearest
        if not is_trusted(hop.address):
            return str(hop.address), hop.proto
    if hop is None:
        return str(peer), None
    # Every hop is one of our proxies: the left-most is the furthest we know.
    return str(hop.address), hop.proto


def client_address(
    scope: MutableMapping[str, Any],
    trusted_proxies: Iterable[str | _Network | _IP] = (),
    *,
    header: ProxyHeader = "x-forwarded-for",
) -> str:
    """Return the address of the client that sent the request in ``scope``.

    Behind :class:`TrustedProxyMiddleware` the scope's client is already resolved: call this
    without ``trusted_proxies`` there, or the headers would be walked a second time.

    Args:
        scope: An ASGI HTTP or WebSocket scope.
        trusted_proxies: Addresses and networks (``"10.0.0.0/8"``, ``"::1"``) of the proxies
            in front of the application. Empty (the default) means proxy headers are ignored.
        header: Which proxy header the trusted proxies maintain.

    Returns:
        The client's IP address in canonical form (IPv4-mapped IPv6 as IPv4), or
        ``"unknown"`` when the server reports no peer (a Unix socket) or a peer that is not an
        IP address.

    Raises:
        ConfigurationError: If an entry of ``trusted_proxies`` is not an address or network,
            or the entries cover every address.
    """
    return _resolve(scope, trusted_networks(tuple(trusted_proxies)), header)[0]


class TrustedProxyMiddleware:
    """Sets the scope's client address and scheme from the headers of trusted proxies.

    The one place proxy headers are read: install it outermost and turn the ASGI server's own
    proxy handling off (``uvicorn --no-proxy-headers``). Requests from other peers pass
    unchanged, whatever headers they carry. A scheme is taken only if it is one the connection
    type can have (``http``/``https``, ``ws``/``wss``).

    Args:
        app: The ASGI application to wrap.
        trusted_proxies: Addresses and networks of the proxies in front of the application.
        header: Which proxy header they maintain.

    Raises:
        ConfigurationError: If an entry is invalid or the entries cover every address.
    """

    def __init__(
        self,
        app: ASGIApp,
        *,
        trusted_proxies: Iterable[str | _Network | _IP],
        header: ProxyHeader = "x-forwarded-for",
    ):
        self.app = app
        self.trusted = trusted_networks(tuple(trusted_proxies))
        self.header: ProxyHeader = header

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        """Serve one ASGI connection, resolving HTTP and WebSocket clients first."""
        apply_proxy_headers(scope, self.trusted, self.header)
        await self.app(scope, receive, send)


def apply_proxy_headers(
    scope: Scope, trusted: tuple[_Network, ...], header: ProxyHeader = "x-forwarded-for"
) -> None:
    """Set an HTTP or WebSocket scope's client and scheme from the trusted proxies' headers.

    What :class:`TrustedProxyMiddleware` does to each scope, for middleware that folds it into
    its own call. ``trusted`` comes from :func:`trusted_networks`; other scopes, and requests
    from peers outside it, are left unchanged.
    """
    schemes = _SCHEMES.get(scope["type"])
    if schemes is None or not trusted:
        return
    address, proto = _resolve(scope, trusted, header)
    client = scope.get("client")
    peer = _parse_ip(client[0]) if client else None
    if address != _UNKNOWN and address != str(peer):
        scope["client"] = (address, 0)  # a forwarded hop: its port is unknown
    if proto is not None:
        # A proxy reports the scheme of its own connection: http(s) even for websockets.
        plain, secure = schemes
        if proto in (plain, "http", "ws"):
            scope["scheme"] = plain
        elif proto in (secure, "https", "wss"):
            scope["scheme"] = secure
