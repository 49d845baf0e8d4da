"""What a database URL may say, checked before any driver reads it.

redis-py and asyncpg read a URL's query themselves and pass on whatever they do not know:
redis-py as keyword arguments to every connection it opens (a ``TypeError`` at the first
command), asyncpg as server settings (which PostgreSQL refuses at the first connection). A typo
such as ``?prefx=app1:`` then surfaced only once a request ran, as a 500 or a traceback. So
:func:`check_url` reads every URL first, without importing either driver, and refuses with one
:class:`~sessionauth.errors.ConfigurationError` naming the URL (credentials masked, see
:func:`redact`) and the problem: an option its backend does not document (the message lists
those it does), a port outside 1-65535, a host that does not parse, a Redis database that is
not a non-negative integer.

The options each scheme accepts (:data:`OPTIONS`):

* ``redis://``: ``prefix`` (the key prefix), ``client_name``, ``health_check_interval``
  (seconds), ``max_connections`` (the pool's limit), ``protocol`` (``2`` or ``3``);
* ``rediss://``: those, and redis-py's TLS options ``ssl_ca_certs``, ``ssl_ca_path``,
  ``ssl_certfile``, ``ssl_keyfile``, ``ssl_cert_reqs`` (``none``, ``optional``,
  ``required``) and ``ssl_check_hostname``;
* ``redis+sentinel://``: ``prefix``, ``db``, ``wait_replicas`` and ``ack_timeout``;
* ``redis+cluster://``: ``prefix``;
* ``postgresql://``: the libpq connection parameters asyncpg implements (``sslmode``,
  ``sslrootcert``, ``target_session_attrs``, ``host``, …); server settings are not taken;
* ``sqlite:///PATH`` and ``memory://``: none.
"""

from __future__ import annotations

import re
from urllib.parse import parse_qsl

from sessionauth.errors import ConfigurationError

__all__ = ["OPTIONS", "check_url", "redact"]

_REDIS = ("prefix", "client_name", "health_check_interval", "max_connections", "protocol")
_TLS = (
    "ssl_ca_certs",
    "ssl_ca_path",
    "ssl_certfile",
    "ssl_keyfile",
    "ssl_cert_reqs",
    "ssl_check_hostname",
)
# asyncpg's own DSN parameters (asyncpg/connect_utils.py); it sends any other as a server
# setting, which PostgreSQL refuses at connect time unless it names a real one.
_POSTGRES = (
    "host",
    "port",
    "user",
    "password",
    "passfile",
    "dbname",
    "database",
    "service",
    "sslmode",
    "sslrootcert",
    "sslcert",
    "sslkey",
    "sslpassword",
    "sslcrl",
    "sslnegotiation",
    "ssl_min_protocol_version",
    "ssl_max_protocol_version",
    "target_session_attrs",
    "krbsrvname",
    "gsslib",
)
OPTIONS: dict[str, tuple[str, ...]] = {
    "redis": _REDIS,
    "rediss": _REDIS + _TLS,
    "redis+sentinel": ("prefix", "db", "wait_replicas", "ack_timeout"),
    "redis+cluster": ("prefix",),
    "postgresql": _POSTGRES,
    "postgres": _POSTGRES,
}
"""The query options each URL scheme accepts."""

# Options whose value must be one of a few words (checked here: the drivers would raise
# later, or fall back to a default quietly).
_CHOICES = {
    "ssl_cert_reqs": ("none", "optional", "required"),
    "protocol": ("2", "3"),  # RESP2 or RESP3 (the read pipeline speaks RESP2 either way)
    "sslmode": ("disable", "allow", "prefer", "require", "verify-ca", "verify-full"),
    "target_session_attrs": (
        "any",
        "primary",
        "standby",
        "prefer-standby",
        "read-write",
        "read-only",
    ),
    "gsslib": ("gssapi", "sspi"),
    "sslnegotiation": ("postgres", "direct"),
    "ssl_min_protocol_version": ("TLSv1", "TLSv1.1", "TLSv1.2", "TLSv1.3"),
    "ssl_max_protocol_version": ("TLSv1", "TLSv1.1", "TLSv1.2", "TLSv1.3"),
}
_COUNTS = ("health_check_interval", "db", "wait_replicas")  # integers from 0
_SECRETS = ("password", "sslpassword")  # query options masked by redact()
_KINDS = {"redis": "Redis", "rediss": "Redis", "redis+sentinel": "Sentinel"}
_HOST = re.compile(r"[A-Za-z0-9._~%!$&'()*+;=-]+")


def redact(url: str) -> str:
    """Return ``url`` with its passwords masked (``user:***@``, ``?password=***``).

    For messages and logs: a URL may carry credentials in its user part or, for PostgreSQL,
    in its query.
    """
    scheme, sep, rest = url.partition("://")
    # The user part ends at the last "@" before the query, so that a raw "/" in a password
    # (which should be percent-encoded) is masked too.
    head, question, query = rest.partition("?")
    userinfo, at, hosts = head.rpartition("@")
    if at and ":" in userinfo:
        head = f"{userinfo.partition(':')[0]}:***@{hosts}"
    if question:
        items = [
            f"{name}=***" if name in _SECRETS else item
            for item in query.split("&")
            for name in [item.partition("=")[0]]
        ]
        query = "&".join(items)
    return f"{scheme}{sep}{head}{question}{query}"


def check_url(url: str) -> None:
    """Refuse a database URL that its backend would misread or its driver pass on unchecked.

    Checks the host and port part, the path where it means something (a Redis database) and
    the query against :data:`OPTIONS`; the scheme itself is left to
    :func:`~sessionauth.backends.open_backend`, and a SQLite URL to its backend.

    Raises:
        ConfigurationError: ``bad <kind> URL '<redacted url>': <problem>``.
    """
    scheme = url.partition("://")[0].lower()
    accepted = OPTIONS.get(scheme)
    if accepted is None:
        return
    kind = "PostgreSQL" if scheme.startswith("postgres") else _KINDS.get(scheme, "Redis Cluster")
    try:
        _check(url, scheme, accepted)
    except ValueError as exc:
        raise ConfigurationError(f"bad {kind} URL {redact(url)!r}: {exc}") from None


def _check(url: str, scheme: str, accepted: tuple[str, ...]) -> None:
    rest = url.partition("://")[2]
    authority, _, tail = rest.partition("/")
    authority, in_authority, query = authority.partition("?")
    path, _, tail_query = tail.partition("?")
    if not in_authority:
        query = tail_query
    if "#" in url:
        raise ValueError("a URL fragment ('#…') means nothing here")
    hosts = authority.rpartition("@")[2]
    postgres = scheme.startswith("postgres")
    if not hosts and not postgres:  # PostgreSQL may name its host in ?host= or the socket
        raise ValueError("it names no host")
    for item in hosts.split(",") if hosts else ():
        _check_host_port(item)
    if scheme in ("redis", "rediss") and path.strip("/"):
        _check_count("the database", path.strip("/"))
    options = parse_qsl(query, keep_blank_values=True)
    for name, value in options:
        if name not in accepted:
            if scheme == "redis" and name in _TLS:
                raise ValueError(f"{name!r} is a TLS option: TLS needs a rediss:// URL")
            raise ValueError(f"unknown option {name!r}; it accepts {', '.join(accepted)}")
        _check_value(name, value)
        if name == "port":
            _check_port(value)


def _check_host_port(item: str) -> None:
    if item.startswith("["):  # [IPv6]:port
        host, closed, port = item[1:].partition("]")
        if not closed or not host or not re.fullmatch(r"[0-9A-Fa-f:.]+(%[\w.-]+)?", host):
            raise ValueError(f"bad IPv6 address in {item!r}: write it as [::1]:port")
        if port and not port.startswith(":"):
            raise ValueError(f"bad host:port {item!r}")
        port = port[1:] if port else ""
        if port or item.endswith(":"):
            _check_port(port)
        return
    host, colon, port = item.rpartition(":") if ":" in item else (item, "", "")
    if "[" in item or "]" in item or not _HOST.fullmatch(host):
        raise ValueError(f"bad host {item!r}")
    if colon:
        _check_port(port)


def _check_port(port: str) -> None:
    if not port.isdigit() or not 0 < int(port) < 65536:
        raise ValueError(f"bad port {port!r}: a port is a number from 1 to 65535")


def _check_count(what: str, value: str) -> None:
    if not value.isdigit():
        raise ValueError(f"{what} {value!r} is not a non-negative integer")


def _check_value(name: str, value: str) -> None:
    choices = _CHOICES.get(name)
    if choices is not None and value not in choices:
        raise ValueError(f"bad {name}={value!r}: use one of {', '.join(choices)}")
    if name in _COUNTS:
        _check_count(name, value)
    if name == "max_connections" and not (value.isdigit() and int(value) > 0):
        raise ValueError(f"max_connections {value!r} is not a positive integer")
