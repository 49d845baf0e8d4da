"""Whether a Redis session store may evict keys: it must not, or throttling can be flooded away.

Sessions and login attempt counters both carry TTLs, so under any ``maxmemory-policy`` but
``noeviction`` (``allkeys-lru``, ``volatile-ttl``, …) a full Redis drops them to make room: a
flood of anonymous writes could evict an account's attempt counter and buy the attacker a fresh
budget of password guesses, or evict live sessions. With ``noeviction`` a full Redis refuses
writes instead, which the stores turn into 503s: loud, and fail-closed.

:func:`eviction_findings` reads ``maxmemory_policy`` from ``INFO memory`` (or, failing that,
``CONFIG GET maxmemory-policy``) on every master the URL leads to: the server itself, the
master Sentinel names, or every Cluster master. A policy it cannot read (a managed Redis that
hides both) is a warning, not a refusal: the operator must check it in the provider's console.
"""

from __future__ import annotations

import asyncio
from dataclasses import dataclass, field
from typing import Any

from sessionauth.backends.urls import missing_extra
from sessionauth.errors import ConfigurationError

__all__ = ["EvictionReport", "enforce_no_eviction", "eviction_findings"]

SAFE_POLICY = "noeviction"
REDIS_SCHEMES = ("redis", "rediss", "redis+sentinel", "redis+cluster")
# Query options the session store reads itself; redis-py would refuse them.
_STORE_OPTIONS = ("prefix", "wait_replicas", "ack_timeout")


@dataclass
class EvictionReport:
    """What was found about the eviction policy of a store's masters.

    Attributes:
        problems: Masters whose policy can evict keys (production refuses to start).
        warnings: Masters whose policy could not be read (always only a warning).
    """

    problems: list[str] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)


def _without_store_options(url: str) -> str:
    base, question, query = url.partition("?")
    if not question:
        return url
    kept = [item for item in query.split("&") if item.partition("=")[0] not in _STORE_OPTIONS]
    return f"{base}?{'&'.join(kept)}" if any(kept) else base


def _command_refused(exc: BaseException) -> bool:
    """Whether a Redis error reply refuses the command itself (forbidden, renamed, unknown)."""
    from redis import exceptions as rx

    text = str(exc).lower()
    return isinstance(exc, rx.NoPermissionError) or "unknown command" in text


def _policy_from(info: Any) -> str | None:
    if isinstance(info, dict):
        value = info.get("maxmemory_policy", info.get("maxmemory-policy"))
        if isinstance(value, bytes):
            value = value.decode()
        return str(value) if value is not None else None
    return None


async def _read_policy(run: Any) -> str | None:
    """Return the policy via ``INFO memory``, else ``CONFIG GET``; ``None`` if neither answers.

    Args:
        run: Sends one command to the master in question: ``run(method_name, *args)``.
    """
    from redis import exceptions as rx

    for method, args in (("info", ("memory",)), ("config_get", ("maxmemory-policy",))):
        try:
            policy = _policy_from(await run(method, *args))
        except rx.ResponseError as exc:
            # Only a command renamed or forbidden (NOPERM) on managed services means "hidden";
            # any other refusal (``DB index is out of range``) is the real error to report.
            if not _command_refused(exc):
                raise
            continue
        if policy:
            return policy
    return None


async def eviction_findings(url: str, *, socket_timeout: float = 2.0) -> EvictionReport:
    """Read the eviction policy of every master behind a Redis store URL.

    Args:
        url: The session store URL; anything but a Redis URL yields an empty report.
        socket_timeout: Seconds for each connection and command.

    Returns:
        The masters whose policy evicts, and those whose policy could not be read (including
        when Redis cannot be reached: the check must not block a start the store would allow).

    Raises:
        ConfigurationError: For a malformed Redis URL or a missing ``redis`` extra.
    """
    if url.partition("://")[0].lower() not in REDIS_SCHEMES:
        return EvictionReport()
    try:
        from redis import exceptions as rx
        from redis.asyncio.cluster import RedisCluster

        from sessionauth.backends.redis.urls import client_from_url, redact
    except ImportError as exc:
        raise missing_extra("redis", exc) from exc
    report = EvictionReport()
    clients = client_from_url(_without_store_options(url), timeout=socket_timeout)
    client = clients.client
    try:
        masters: list[tuple[str, Any]]
        if isinstance(client, RedisCluster):
            await client.initialize()
            masters = [
                (
                    node.name,
                    lambda method, *args, node=node: getattr(client, method)(
                        *args, target_nodes=node
                    ),
                )
                for node in client.get_primaries()
            ]
        else:
            masters = [(redact(url), lambda method, *args: getattr(client, method)(*args))]
        for name, run in masters:
            policy = await asyncio.wait_for(_read_policy(run), socket_timeout * 2)
            _judge(report, name, policy)
    except (rx.RedisError, rx.RedisClusterException, OSError, TimeoutError) as exc:
        report.warnings.append(
            f"could not read the Redis eviction policy of {redact(url)} ({exc}); make sure "
            f"maxmemory-policy is {SAFE_POLICY}"
        )
    finally:
        await clients.aclose()
    return report


def _judge(report: EvictionReport, name: str, policy: str | None) -> None:
    if policy is None:
        report.warnings.append(
            f"the Redis master {name} does not tell its maxmemory-policy (INFO and CONFIG "
            f"unavailable, as on managed services): make sure it is {SAFE_POLICY}, or a full "
            "Redis evicts sessions and login attempt counters"
        )
    elif policy != SAFE_POLICY:
        report.problems.append(
            f"the Redis master {name} has maxmemory-policy {policy}: when full it evicts "
            "sessions and login attempt counters (a flood of writes resets throttling); set "
            f"maxmemory-policy {SAFE_POLICY}"
        )


def enforce_no_eviction(report: EvictionReport, *, production: bool) -> list[str]:
    """Refuse an evicting store in production; return every line to warn about otherwise.

    Raises:
        ConfigurationError: In production, when a master's policy evicts.
    """
    if report.problems and production:
        raise ConfigurationError(
            "refusing to start in production:\n" + "\n".join(f"- {p}" for p in report.problems)
        )
    return [*report.problems, *report.warnings]
