"""Database URLs are checked before any driver reads them: one clear error for each mistake.

redis-py used to receive unknown options as connection keyword arguments (a ``TypeError`` at
the first command) and asyncpg as server settings (PostgreSQL refusing the first connection),
and a port or host they could not parse was an ``OverflowError`` or ``ValueError`` from deep
inside them.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from sessionauth.backends import open_backend
from sessionauth.backends.url_checks import check_url, redact
from sessionauth.errors import ConfigurationError
from sessionauth.server.settings import load_settings

# url: (the URL as the message shows it, the problem it names)
BAD = {
    "redis://app:s3cret@127.0.0.1:6379/11?prefx=app1:": (
        "bad Redis URL 'redis://app:***@127.0.0.1:6379/11?prefx=app1:'",
        "unknown option 'prefx'; it accepts prefix, client_name, health_check_interval,",
    ),
    "redis://127.0.0.1:6379/0?protocol=4": (
        "bad Redis URL",
        "bad protocol='4': use one of 2, 3",
    ),
    "redis://127.0.0.1:6379/0?bogus=1": (
        "bad Redis URL 'redis://127.0.0.1:6379/0?bogus=1'",
        "unknown option 'bogus'",
    ),
    "redis://127.0.0.1:6379/0?socket_timeout=30": (
        "bad Redis URL",
        "unknown option 'socket_timeout'",
    ),
    "redis://127.0.0.1:6379/0?ssl_ca_certs=/ca.pem": (
        "bad Redis URL",
        "'ssl_ca_certs' is a TLS option: TLS needs a rediss:// URL",
    ),
    "rediss://127.0.0.1:6380/0?ssl_cert_reqs=maybe": (
        "bad Redis URL",
        "bad ssl_cert_reqs='maybe': use one of none, optional, required",
    ),
    "redis://127.0.0.1:6379/0?max_connections=0": (
        "bad Redis URL",
        "max_connections '0' is not a positive integer",
    ),
    "redis://127.0.0.1:99999/0": ("bad Redis URL", "bad port '99999': a port is a number"),
    "redis://127.0.0.1:0/0": ("bad Redis URL", "bad port '0'"),
    "redis://[::1/0": ("bad Redis URL", "bad IPv6 address in '[::1'"),
    "redis://127.0.0.1:6379/-1": ("bad Redis URL", "the database '-1' is not a non-negative"),
    "redis://127.0.0.1:6379/1.5": ("bad Redis URL", "the database '1.5' is not a non-negative"),
    "redis://:s3cret@/0": ("bad Redis URL 'redis://:***@/0'", "it names no host"),
    "redis+sentinel://127.0.0.1:26379/mymaster?prefx=app1:": (
        "bad Sentinel URL",
        "unknown option 'prefx'; it accepts prefix, db, wait_replicas, ack_timeout",
    ),
    "redis+sentinel://127.0.0.1:70000/mymaster": ("bad Sentinel URL", "bad port '70000'"),
    "redis+sentinel://127.0.0.1:26379/mymaster?db=-1": (
        "bad Sentinel URL",
        "db '-1' is not a non-negative integer",
    ),
    "redis+cluster://127.0.0.1:7000,[::1:7001?prefix=a:": (
        "bad Redis Cluster URL",
        "bad IPv6 address in '[::1:7001'",
    ),
    "redis+cluster://127.0.0.1:7000?db=1": ("bad Redis Cluster URL", "unknown option 'db'"),
    "postgresql://postgres:s3cret@127.0.0.1:5432/x?foo=bar": (
        "bad PostgreSQL URL 'postgresql://postgres:***@127.0.0.1:5432/x?foo=bar'",
        "unknown option 'foo'; it accepts host, port, user, password,",
    ),
    "postgresql://postgres@127.0.0.1/x?password=s3cret&application_name=x": (
        "bad PostgreSQL URL 'postgresql://postgres@127.0.0.1/x?password=***&application_name=x'",
        "unknown option 'application_name'",
    ),
    "postgresql://postgres@127.0.0.1:99999/x": ("bad PostgreSQL URL", "bad port '99999'"),
    "postgresql://postgres@[::1/x": ("bad PostgreSQL URL", "bad IPv6 address in '[::1'"),
    "postgresql://postgres@h1:5432,h2:5432x/x": ("bad PostgreSQL URL", "bad port '5432x'"),
    "postgresql://postgres@127.0.0.1/x?port=0": ("bad PostgreSQL URL", "bad port '0'"),
    "postgres://postgres@127.0.0.1/x?sslmode=maybe": (
        "bad PostgreSQL URL",
        "bad sslmode='maybe': use one of disable, allow, prefer, require,",
    ),
}

# Every option the README and docs/deployment.md document, and the TLS and pool settings.
GOOD = [
    "redis://127.0.0.1:6379/0?prefix=app1:",
    "redis://app:pw@[::1]:6379?health_check_interval=30&max_connections=50&client_name=web"
    "&protocol=3",
    "rediss://app:pw@127.0.0.1:6380/0?ssl_ca_certs=/ca.pem&ssl_cert_reqs=required"
    "&ssl_check_hostname=true&ssl_certfile=/c.pem&ssl_keyfile=/k.pem&ssl_ca_path=/cas",
    "redis+sentinel://:pw@127.0.0.1:26379,[::1]/mymaster?db=2&wait_replicas=0&ack_timeout=0.5"
    "&prefix=app1:",
    "redis+cluster://127.0.0.1:7000,127.0.0.1:7001?prefix=app1:",
    "postgresql://postgres@127.0.0.1:5432/test",
    "postgres://u:pw@[::1]:5432/db?sslmode=verify-full&sslrootcert=/ca.pem",
    "postgresql://u@h1:5432,h2:5433/db?target_session_attrs=read-write",
    "postgresql:///db?host=/var/run/postgresql&user=app",
]


@pytest.mark.parametrize("url", BAD)
def test_a_bad_url_is_one_error_naming_the_url_and_the_problem(url: str) -> None:
    """Each mistake is a ConfigurationError: the URL (passwords masked), then the problem."""
    shown, problem = BAD[url]
    with pytest.raises(ConfigurationError) as caught:
        check_url(url)
    message = str(caught.value)
    assert message.startswith(shown), message
    assert problem in message
    assert "s3cret" not in message
    assert "\n" not in message


@pytest.mark.parametrize("url", BAD)
async def test_open_backend_refuses_a_bad_url_before_connecting(url: str) -> None:
    """open_backend() checks the URL itself, so the library refuses it as the server does."""
    with pytest.raises(ConfigurationError, match=r"^bad .*URL"):
        open_backend(url)


@pytest.mark.parametrize("url", GOOD)
async def test_every_documented_option_is_accepted(url: str) -> None:
    """The documented options (prefix, TLS, pool, Sentinel, libpq's) still build a backend."""
    check_url(url)
    async with open_backend(url) as backend:
        assert backend.kind in ("Redis", "PostgreSQL")


@pytest.mark.parametrize("variable", ["SESSIONAUTH_STORE_URL", "SESSIONAUTH_DATABASE_URL"])
def test_the_settings_name_the_variable_of_a_bad_url(
    variable: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A bad URL in either variable fails the settings, naming the variable and the problem."""
    monkeypatch.setenv("SESSIONAUTH_DATA_DIR", str(tmp_path))
    monkeypatch.setenv(variable, "postgresql://postgres:s3cret@127.0.0.1:5432/x?foo=bar")
    with pytest.raises(ConfigurationError) as caught:
        load_settings()
    message = str(caught.value)
    assert f"{variable}: Value error, bad PostgreSQL URL" in message
    assert "unknown option 'foo'" in message
    assert "s3cret" not in message


def test_redact_masks_passwords_only() -> None:
    """The user, hosts, path and other options stay readable; passwords become ***."""
    assert redact("redis://u:p@h:1/0?prefix=a:") == "redis://u:***@h:1/0?prefix=a:"
    assert redact("redis+sentinel://:p@h1:1,h2:2/m") == "redis+sentinel://:***@h1:1,h2:2/m"
    assert redact("redis+cluster://u:p@h:1?prefix=a") == "redis+cluster://u:***@h:1?prefix=a"
    assert redact("postgresql://u@h/d?sslpassword=p&password=p") == (
        "postgresql://u@h/d?sslpassword=***&password=***"
    )
    assert redact("postgresql://u@h/d") == "postgresql://u@h/d"
    assert redact("redis://u:pa/ss@h:1/0") == "redis://u:***@h:1/0"
