"""TrustedProxyMiddleware: client address and scheme from trusted proxies only, IPs only."""

from __future__ import annotations

from typing import Any

import pytest

from sessionauth.auth.client_address import (
    TrustedProxyMiddleware,
    client_address,
    covers_every_address,
    trusted_networks,
)
from sessionauth.auth.throttle import LoginThrottle
from sessionauth.errors import ConfigurationError, TooManyAttempts
from sessionauth.stores.memory import MemoryCounter

PROXIES = ["10.0.0.0/8", "::ffff:192.0.2.0/120"]


async def _resolved(peer: str | None, *headers: tuple[str, str], kind: str = "http") -> Any:
    seen: dict[str, Any] = {}

    async def app(scope: dict[str, Any], receive: Any, send: Any) -> None:
        seen.update(scope)

    middleware = TrustedProxyMiddleware(app, trusted_proxies=PROXIES)
    scope = {
        "type": kind,
        "scheme": "http" if kind == "http" else "ws",
        "client": None if peer is None else (peer, 4711),
        "headers": [(k.encode(), v.encode("latin-1")) for k, v in headers],
    }
    await middleware(scope, None, None)  # type: ignore[arg-type]
    return seen["client"], seen["scheme"]


async def test_a_trusted_proxy_sets_client_and_scheme_once() -> None:
    """The forwarded client and X-Forwarded-Proto replace the peer; later reads see them as is."""
    client, scheme = await _resolved(
        "10.0.0.1", ("x-forwarded-for", "6.6.6.6, 203.0.113.9"), ("x-forwarded-proto", "https")
    )
    assert (client, scheme) == (("203.0.113.9", 0), "https")
    # Read again without trusted proxies (as the server's routes do): nothing moves further left.
    assert client_address({"client": client, "headers": []}) == "203.0.113.9"


async def test_an_untrusted_peer_changes_nothing() -> None:
    """Headers from a peer that is not a trusted proxy are the client's own: ignored."""
    client, scheme = await _resolved(
        "203.0.113.5", ("x-forwarded-for", "1.2.3.4"), ("x-forwarded-proto", "https")
    )
    assert (client, scheme) == (("203.0.113.5", 4711), "http")


@pytest.mark.parametrize("value", ["evil", "<script>", "1.2.3.4.5", "unknown", "_hidden", ""])
async def test_a_forwarded_value_that_is_not_an_ip_is_ignored(value: str) -> None:
    """A non-IP X-Forwarded-For never becomes the client: the proxy's own address stays."""
    client, _ = await _resolved("10.0.0.1", ("x-forwarded-for", value))
    assert client == ("10.0.0.1", 4711)


@pytest.mark.parametrize(
    ("protos", "expected"),
    [
        ("https", "https"),
        ("HTTPS", "https"),
        ("http", "http"),
        ("https, http", "https"),  # one per hop: the proto of the hop named as the client
        ("javascript", "http"),
        ("https, https, http", "http"),  # neither one value nor one per hop: ignored
    ],
)
async def test_scheme_comes_from_the_client_hop(protos: str, expected: str) -> None:
    """X-Forwarded-Proto: one value for the chain, or the value of the client's hop."""
    _, scheme = await _resolved(
        "10.0.0.1", ("x-forwarded-for", "203.0.113.9, 10.0.0.2"), ("x-forwarded-proto", protos)
    )
    assert scheme == expected


async def test_websocket_schemes_follow_the_proxy() -> None:
    """A websocket behind a TLS proxy becomes wss."""
    _, scheme = await _resolved(
        "10.0.0.1",
        ("x-forwarded-for", "203.0.113.9"),
        ("x-forwarded-proto", "https"),
        kind="websocket",
    )
    assert scheme == "wss"


async def test_ipv4_mapped_proxy_networks_trust_ipv4_peers() -> None:
    """::ffff:192.0.2.0/120 trusts 192.0.2.x, however the socket reports it."""
    for peer in ("192.0.2.7", "::ffff:192.0.2.7"):
        client, _ = await _resolved(peer, ("x-forwarded-for", "203.0.113.9"))
        assert client == ("203.0.113.9", 0)


@pytest.mark.parametrize(
    "entries",
    [
        ("*",),
        ("0.0.0.0/0",),
        ("::/0",),
        ("0.0.0.0/1", "128.0.0.0/1"),
        ("::ffff:0:0/96",),
        ("0.0.0.0/2", "64.0.0.0/2", "::ffff:128.0.0.0/97"),
    ],
)
def test_sets_covering_every_address_are_refused(entries: tuple[str, ...]) -> None:
    """The library refuses them too, like "*": every client would choose its address."""
    with pytest.raises(ConfigurationError, match="every IPv4 or IPv6 address"):
        trusted_networks(entries)
    with pytest.raises(ConfigurationError):
        TrustedProxyMiddleware(lambda *a: None, trusted_proxies=entries)  # type: ignore[arg-type]


def test_coverage_is_computed_on_the_union() -> None:
    """Overlaps and gaps are judged on the collapsed union, not entry by entry."""
    import ipaddress

    halves = [ipaddress.ip_network("0.0.0.0/1"), ipaddress.ip_network("128.0.0.0/2")]
    assert not covers_every_address(halves)
    assert covers_every_address([*halves, ipaddress.ip_network("192.0.0.0/2")])


async def test_the_proxy_scheme_counts_without_a_forwarded_address() -> None:
    """X-Forwarded-Proto alone (a proxy that sets no X-Forwarded-For) still gives the scheme."""
    client, scheme = await _resolved("10.0.0.1", ("x-forwarded-proto", "https"))
    assert (client, scheme) == (("10.0.0.1", 4711), "https")


@pytest.mark.parametrize("header", ["x-forwarded-for", "forwarded"])
def test_hops_left_of_the_client_are_never_parsed(header: str) -> None:
    """A client's 100,000 forged hops, grammar broken among them: the client is still found.

    Only the right-most hops (our proxies' and the client they saw) matter. Parsing every hop
    first cost ~12 µs each (100,000 forged hops held the event loop for over a second), and a
    broken element anywhere made the whole chain unusable. The walk from the right parses
    nothing left of the first untrusted hop, so neither the amount nor the grammar of what a
    client wrote there changes the answer.
    """
    forged_hop = "6.6.6.6, not-an-ip" if header == "x-forwarded-for" else "for=6.6.6.6;;=, x"
    forged = ", ".join([forged_hop] * 50_000)
    tail = (
        "203.0.113.9, 10.0.0.2" if header == "x-forwarded-for" else "for=203.0.113.9, for=10.0.0.2"
    )
    scope = {
        "type": "http",
        "client": ("10.0.0.1", 4711),
        "headers": [(header.encode(), f"{forged}, {tail}".encode())],
    }
    assert client_address(scope, PROXIES, header=header) == "203.0.113.9"  # type: ignore[arg-type]


@pytest.mark.parametrize(
    "forwarded", ["2001:db8::1%<script>", "2001:db8::1%a b c", "2001:db8::1%" + "z" * 2000]
)
async def test_a_forwarded_zone_id_is_not_text_that_gets_stored(forwarded: str) -> None:
    """An IPv6 hop's %zone is free text: the client address must not carry it into storage."""
    client, _ = await _resolved("10.0.0.1", ("x-forwarded-for", forwarded))
    assert client[0] in ("2001:db8::1", "10.0.0.1"), client[0][:80]


async def test_zone_ids_do_not_split_an_address_throttle_bucket() -> None:
    """With per-address IPv6 counting, 2001:db8::1%1 and %2 are one client, one bucket."""
    throttle = LoginThrottle(MemoryCounter(), ipv6_prefix=128, max_per_address=1)
    await throttle.reserve("ann@example.com", "2001:db8::1%1")
    with pytest.raises(TooManyAttempts):
        await throttle.reserve("bob@example.com", "2001:db8::1%2")
    await throttle.reserve("bob@example.com", "2001:db8::2%2")  # another host, its own bucket
