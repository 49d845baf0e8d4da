"""The client address behind trusted proxies: X-Forwarded-For and Forwarded, spoofing refused."""

from __future__ import annotations

from typing import Any

import pytest

from sessionauth.auth.client_address import client_address
from sessionauth.errors import ConfigurationError


def scope(peer: str | None, *headers: tuple[str, str]) -> dict[str, Any]:
    return {
        "type": "http",
        "client": None if peer is None else (peer, 50123),
        "headers": [(name.encode(), value.encode("latin-1")) for name, value in headers],
    }


PROXIES = ["10.0.0.0/8", "2001:db8:ffff::1"]


def test_peer_address_without_trusted_proxies() -> None:
    """With no trusted proxy configured, forwarding headers are ignored."""
    request = scope("203.0.113.5", ("x-forwarded-for", "1.2.3.4"), ("forwarded", "for=1.2.3.4"))
    assert client_address(request, []) == "203.0.113.5"
    assert client_address(request, [], header="forwarded") == "203.0.113.5"


def test_spoofed_header_from_an_untrusted_peer_is_ignored() -> None:
    """A client that is not a trusted proxy cannot choose its address with X-Forwarded-For."""
    request = scope("203.0.113.5", ("x-forwarded-for", "10.0.0.9, 1.2.3.4"))
    assert client_address(request, PROXIES) == "203.0.113.5"


def test_right_most_untrusted_hop_wins() -> None:
    """Behind trusted proxies, addresses the client prepended are skipped, and proxies too."""
    request = scope("10.0.0.1", ("x-forwarded-for", "6.6.6.6, 198.51.100.4, 10.0.0.2"))
    assert client_address(request, PROXIES) == "198.51.100.4"
    only_proxies = scope("10.0.0.1", ("x-forwarded-for", "10.0.0.3, 10.0.0.2"))
    assert client_address(only_proxies, PROXIES) == "10.0.0.3"


def test_repeated_header_lines_form_one_list() -> None:
    """Two X-Forwarded-For lines read as one list, in order."""
    request = scope("10.0.0.1", ("x-forwarded-for", "6.6.6.6"), ("x-forwarded-for", "198.51.100.4"))
    assert client_address(request, PROXIES) == "198.51.100.4"


@pytest.mark.parametrize(
    ("header", "expected"),
    [
        ("", "10.0.0.1"),
        ("not-an-ip", "10.0.0.1"),
        ("198.51.100.4, garbage", "10.0.0.1"),
        ("198.51.100.4,,", "10.0.0.1"),
        ("garbage, 198.51.100.4", "198.51.100.4"),
        ("198.51.100.4:5678", "198.51.100.4"),
        ("[2001:db8::7]:80", "2001:db8::7"),
        ("2001:DB8:0:0::7", "2001:db8::7"),
        ("::ffff:198.51.100.4", "198.51.100.4"),
    ],
)
def test_x_forwarded_for_forms(header: str, expected: str) -> None:
    """Ports, brackets and IPv6 are read; a malformed right-hand hop falls back to the peer."""
    assert client_address(scope("10.0.0.1", ("x-forwarded-for", header)), PROXIES) == expected


@pytest.mark.parametrize(
    ("header", "expected"),
    [
        ('for="[2001:db8::1]:4711"', "2001:db8::1"),
        ("for=192.0.2.60;proto=http;by=203.0.113.43", "192.0.2.60"),
        ('For=6.6.6.6, for="198.51.100.4:80";proto=https, for=10.0.0.2', "198.51.100.4"),
        ('for=198.51.100.4;host="a,b;c"', "198.51.100.4"),
        ("for=198.51.100.4;", "198.51.100.4"),
        ("for=unknown", "10.0.0.1"),
        ("for=_hidden", "10.0.0.1"),
        ("proto=https", "10.0.0.1"),
        ('for="[2001:db8::1', "10.0.0.1"),
        ("for=2001:db8::1", "10.0.0.1"),
        ("for=198.51.100.4,,", "10.0.0.1"),
        ("198.51.100.4", "10.0.0.1"),
    ],
)
def test_forwarded_header_forms(header: str, expected: str) -> None:
    """RFC 7239 `for=` is parsed with quotes, brackets and ports; anything malformed is ignored."""
    request = scope("10.0.0.1", ("forwarded", header))
    assert client_address(request, PROXIES, header="forwarded") == expected


def test_only_the_configured_header_counts() -> None:
    """A header the proxy does not maintain is the client's own, so it is never read."""
    request = scope("10.0.0.1", ("x-forwarded-for", "198.51.100.4"), ("forwarded", "for=6.6.6.6"))
    assert client_address(request, PROXIES) == "198.51.100.4"
    assert client_address(request, PROXIES, header="forwarded") == "6.6.6.6"


def test_ipv6_peers_and_cidr_trust() -> None:
    """IPv6 peers are canonicalised and trusted by address or CIDR, IPv4-mapped ones as IPv4."""
    assert client_address(scope("2001:DB8::0:5"), PROXIES) == "2001:db8::5"
    trusted_v6 = scope("2001:db8:ffff::1", ("x-forwarded-for", "2001:db8::42"))
    assert client_address(trusted_v6, PROXIES) == "2001:db8::42"
    mapped = scope("::ffff:10.1.2.3", ("x-forwarded-for", "198.51.100.4"))
    assert client_address(mapped, PROXIES) == "198.51.100.4"
    outside = scope("11.0.0.1", ("x-forwarded-for", "198.51.100.4"))
    assert client_address(outside, PROXIES) == "11.0.0.1"


def test_missing_or_non_ip_peer() -> None:
    """No peer, or a peer that is not an IP, gives "unknown": never a key of its own choosing."""
    assert client_address(scope(None, ("x-forwarded-for", "1.2.3.4")), PROXIES) == "unknown"
    assert client_address(scope("testclient", ("x-forwarded-for", "1.2.3.4")), PROXIES) == (
        "unknown"
    )


def test_invalid_trusted_proxy_is_a_configuration_error() -> None:
    """A trusted-proxy entry that is not an address or network is refused."""
    with pytest.raises(ConfigurationError):
        client_address(scope("10.0.0.1"), ["10.0.0.0/33"])
