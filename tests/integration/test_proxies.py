"""Trusted proxies: sets covering every address are refused; headers are resolved in one place."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from typer.testing import CliRunner

from sessionauth.cli import app as cli
from sessionauth.errors import ConfigurationError
from sessionauth.server.app import create_app
from sessionauth.server.settings import Settings
from sessionauth.server.settings_findings import findings
from tests.support.live_server import (
    Agent,
    LiveServer,
    create_user,
    deployment_env,
    live_servers,
    new_client,
)

COVERING = [
    ("*",),
    ("0.0.0.0/0",),
    ("::/0",),
    ("0.0.0.0/1", "128.0.0.0/1"),
    ("::ffff:0:0/96",),
    ("::ffff:0.0.0.0/97", "::ffff:128.0.0.0/97"),
    ("0.0.0.0/1", "::ffff:128.0.0.0/97"),
    ("::/1", "8000::/1"),
    ("10.0.0.0/8", "0.0.0.0/0"),
]
PARTIAL = [
    ("0.0.0.0/1",),
    ("10.0.0.0/8", "::ffff:10.0.0.0/104", "fd00::/8"),
    ("8000::/1",),  # half of IPv6, none of it global unicast
    ("::ffff:0:0/97",),
]


def _settings(tmp_path: Path, env: str, proxies: tuple[str, ...]) -> Settings:
    values: dict[str, Any] = {
        "env": env,
        "secret": "k" * 48,
        "database_url": f"sqlite:///{tmp_path / 'users.db'}",
        "data_dir": tmp_path / "data",
        "trusted_proxies": proxies,
    }
    return Settings(**values)


@pytest.mark.parametrize("env", ["development", "production"])
@pytest.mark.parametrize("proxies", COVERING)
def test_trusted_proxies_covering_every_address_are_refused(
    tmp_path: Path, env: str, proxies: tuple[str, ...]
) -> None:
    """Any set whose union is all of IPv4 or all of IPv6 is a finding and refuses to start."""
    found = findings(_settings(tmp_path, env, proxies))
    assert len(found) == 1
    assert "SESSIONAUTH_TRUSTED_PROXIES" in found[0]
    assert "list your proxies' addresses" in found[0]
    with pytest.raises(ConfigurationError, match="every IPv4 or IPv6 address"):
        create_app(_settings(tmp_path, env, proxies))


@pytest.mark.parametrize("proxies", PARTIAL)
def test_trusted_proxies_short_of_every_address_are_accepted(
    tmp_path: Path, proxies: tuple[str, ...]
) -> None:
    """Large but partial sets (half of IPv4, private ranges) are no finding."""
    settings = _settings(tmp_path, "production", proxies)
    assert findings(settings) == []
    create_app(settings)


@pytest.mark.parametrize("proxies", ["0.0.0.0/0", "0.0.0.0/1,128.0.0.0/1", "::ffff:0:0/96"])
def test_check_reports_a_covering_proxy_set(tmp_path: Path, proxies: str) -> None:
    """`sessionauth check` exits 1 naming SESSIONAUTH_TRUSTED_PROXIES, in development too."""
    env = {
        "SESSIONAUTH_DATABASE_URL": f"sqlite:///{tmp_path / 'users.db'}",
        "SESSIONAUTH_DATA_DIR": str(tmp_path / "data"),
        "SESSIONAUTH_SECRET": "k" * 48,
        "SESSIONAUTH_TRUSTED_PROXIES": proxies,
    }
    result = CliRunner().invoke(cli, ["check"], env=env)
    assert result.exit_code == 1
    assert "SESSIONAUTH_TRUSTED_PROXIES" in result.stdout
    assert "every IPv4 or IPv6 address" in result.stdout


# -- a real `sessionauth serve` behind a (pretend) proxy on 127.0.0.1 ------------------------


@pytest.fixture(scope="module")
def proxied(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[LiveServer, str]]:
    """A live server trusting 127.0.0.1 (where the test connects from) as its proxy."""
    directory = tmp_path_factory.mktemp("proxied")
    database = f"sqlite:///{directory / 'users.db'}"
    settings = deployment_env(
        database_url=database,
        store_url=database,
        data_dir=directory / "data",
        trusted_proxies="127.0.0.1",
    )
    with live_servers() as pool:
        server = pool.start(settings)
        email = "proxied@example.com"
        create_user(settings, email)
        yield server, email


async def _listed_ip(server: LiveServer, email: str, headers: dict[str, str]) -> Any:
    async with new_client() as client:
        agent = Agent(client)
        response = await agent.request(
            "POST",
            f"{server.url}/login",
            json={"email": email, "password": "correct horse battery staple"},
            headers=headers,
        )
        assert response.status_code == 200, response.text
        sessions = (await agent.request("GET", f"{server.url}/sessions")).json()["sessions"]
    return next(s["ip"] for s in sessions if s["current"])


@pytest.mark.parametrize(
    ("forwarded", "expected"),
    [
        ("203.0.113.9", "203.0.113.9"),
        ("6.6.6.6, 203.0.113.9", "203.0.113.9"),
        ("evil-host", "127.0.0.1"),
        ("<script>", "127.0.0.1"),
        ("203.0.113.9, not-an-ip", "127.0.0.1"),
    ],
)
async def test_a_live_server_stores_only_addresses_its_proxy_forwarded(
    proxied: tuple[LiveServer, str], forwarded: str, expected: str
) -> None:
    """Through uvicorn, the session records the forwarded IP; a non-IP value is ignored."""
    server, email = proxied
    assert await _listed_ip(server, email, {"x-forwarded-for": forwarded}) == expected
    assert not server.server_errors()


async def test_a_live_server_takes_the_scheme_from_its_proxy(
    proxied: tuple[LiveServer, str],
) -> None:
    """X-Forwarded-Proto from the trusted proxy decides the scheme the origin layer compares."""
    server, email = proxied
    https_origin = server.url.replace("http://", "https://")
    body = {"email": email, "password": "correct horse battery staple"}
    async with new_client() as client:
        agent = Agent(client)
        as_https = {"x-forwarded-proto": "https", "origin": https_origin}
        assert (
            await agent.request("POST", f"{server.url}/login", json=body, headers=as_https)
        ).status_code == 200
        as_http = {"x-forwarded-proto": "http", "origin": https_origin}
        refused = await agent.request("POST", f"{server.url}/logout", headers=as_http)
        assert refused.status_code == 403


# Every address a TCP client can connect from, without the literal "all": IPv4 less only
# multicast and the reserved class E (224.0.0.0/3), and IPv6's global unicast 2000::/3 (or
# ::/1, which contains it). Any client on the Internet could then name itself.
COVERING_EVERY_CLIENT = [
    ("0.0.0.0/1", "128.0.0.0/2", "192.0.0.0/3"),
    ("2000::/3",),
    ("::/1",),
]


@pytest.mark.parametrize("proxies", COVERING_EVERY_CLIENT)
def test_trusted_proxies_covering_every_unicast_address_are_refused(
    tmp_path: Path, proxies: tuple[str, ...]
) -> None:
    """A set short of "all" only by addresses no client can have (multicast) is refused too."""
    found = findings(_settings(tmp_path, "production", proxies))
    assert len(found) == 1, found
    with pytest.raises(ConfigurationError, match="every IPv4 or IPv6 address"):
        create_app(_settings(tmp_path, "production", proxies))
