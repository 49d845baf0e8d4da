"""Login throttling: failure counters per account and per client address.

A :class:`LoginThrottle` keeps two fixed-window counters in an :class:`AttemptCounter`:

* ``a:<sha256 of the normalised account>``: failures against one account, from any address.
  The account is hashed so the backend never holds email addresses, and it is counted whether
  or not it exists: the throttle never consults the user store, so its answers cannot reveal
  which accounts are registered.
* ``ip:<client address>``: failures from one address against any account, which slows down
  password spraying. IPv6 addresses are counted per /64 by default, since one host usually
  owns a whole /64 and could otherwise rotate through it.

A window starts at the first failure and lasts ``*_window`` seconds; when it ends the count is
zero again, so there is no permanent lockout for an attacker to impose on a victim. The login
flow calls :meth:`LoginThrottle.check` *before* verifying the password (a throttled attempt
costs no hashing), then :meth:`~LoginThrottle.failed` or :meth:`~LoginThrottle.succeeded`.

Counters live in the same backend as sessions (see :func:`open_counter`). Every backend failure
raises :class:`~sessionauth.errors.StoreUnavailable`: the login fails closed rather than
running unthrottled.
"""

from __future__ import annotations

import abc
import asyncio
import hashlib
import ipaddress
import logging
import math
import unicodedata
from typing import Self

from sessionauth.errors import ConfigurationError, TooManyAttempts
from sessionauth.policy import Clock, system_clock
from sessionauth.stores.base import DEFAULT_TIMEOUT

__all__ = [
    "DEFAULT_PREFIX",
    "AttemptCounter",
    "LoginThrottle",
    "MemoryCounter",
    "open_counter",
]

DEFAULT_PREFIX = "sessionauth:attempts:"
"""The key prefix Redis counters use unless told otherwise."""

_SCHEMES = "memory://, sqlite:///PATH, postgresql://, redis://, rediss://, redis+cluster://, redis+sentinel://"

_MAX_ACCOUNT = 4096

security_log = logging.getLogger("sessionauth.security")


class AttemptCounter(abc.ABC):
    """Counts failures per key in a fixed window that starts at the key's first failure.

    Every implementation is atomic per key (concurrent :meth:`hit` calls never lose a count)
    and decides windows by its injected clock, never the backend's own.
    """

    @abc.abstractmethod
    async def hit(self, key: str, window: float) -> tuple[int, float]:
        """Count one failure of ``key`` and return ``(count, reset_at)``.

        A key whose window is over (or that was never hit) starts a new window of ``window``
        seconds with a count of 1; otherwise the count grows and ``reset_at`` stays.

        Raises:
            StoreUnavailable: If the backend failed or did not answer in time.
        """

    @abc.abstractmethod
    async def count(self, key: str) -> tuple[int, float]:
        """Return ``(count, reset_at)`` for ``key``; ``(0, now)`` once its window is over.

        Raises:
            StoreUnavailable: If the backend failed or did not answer in time.
        """

    @abc.abstractmethod
    async def reset(self, key: str) -> None:
        """Forget ``key``'s failures.

        Raises:
            StoreUnavailable: If the backend failed or did not answer in time.
        """

    async def purge(self, now: float | None = None) -> int:
        """Delete keys whose window ended at or before ``now`` (default: the clock's now).

        Expired keys already count as zero; this only reclaims space. Backends that expire
        keys by themselves (Redis TTLs) have nothing to do and return 0.
        """
        del now
        return 0

    async def aclose(self) -> None:
        """Release connections this counter owns. The default owns none."""

    async def __aenter__(self) -> Self:
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        await self.aclose()


class MemoryCounter(AttemptCounter):
    """Keeps counts in a dict in one process, for tests and development.

    Counts are invisible to other workers and vanish on restart, so do not use it in
    production.

    Args:
        clock: The time source deciding windows.
    """

    def __init__(self, clock: Clock = system_clock):
        self._clock = clock
        self._entries: dict[str, tuple[int, float]] = {}

    async def hit(self, key: str, window: float) -> tuple[int, float]:
        """Count one failure of ``key``; nothing is awaited, so this is atomic."""
        now = self._clock()
        count, reset_at = self._entries.get(key, (0, now))
        entry = (count + 1, reset_at) if reset_at > now else (1, now + window)
        self._entries[key] = entry
        return entry

    async def count(self, key: str) -> tuple[int, float]:
        """Return ``(count, reset_at)``, or ``(0, now)`` once the window is over."""
        now = self._clock()
        count, reset_at = self._entries.get(key, (0, now))
        return (count, reset_at) if reset_at > now else (0, now)

    async def reset(self, key: str) -> None:
        """Forget ``key``."""
        self._entries.pop(key, None)

    async def purge(self, now: float | None = None) -> int:
        """Drop keys whose window is over."""
        cutoff = self._clock() if now is None else now
        expired = [key for key, (_, reset_at) in self._entries.items() if reset_at <= cutoff]
        for key in expired:
            del self._entries[key]
        return len(expired)


def open_counter(
    url: str,
    *,
    clock: Clock = system_clock,
    prefix: str | None = None,
    timeout: float = DEFAULT_TIMEOUT,
) -> AttemptCounter:
    """Build the counter that ``url`` names; it owns its connections and opens them lazily.

    Nothing connects here: the first operation does, so a backend that is down at start-up
    surfaces as ``StoreUnavailable`` on the first login, like any later outage.

    Args:
        url: ``memory://``, ``sqlite:///path``, ``postgresql://…``, ``redis://…``,
            ``rediss://…``, ``redis+cluster://host:port`` or
            ``redis+sentinel://[:password@]h1:p1,h2:p2/service[/db]``.
        clock: The time source deciding windows.
        prefix: The key prefix for Redis (ignored by the others). By default, a Redis URL's
            ``?prefix=app1:`` (the session store's, see :func:`~sessionauth.stores.open_store`)
            followed by ``attempts:``, else :data:`DEFAULT_PREFIX`.
        timeout: Seconds an operation may take before raising ``StoreUnavailable``.

    Raises:
        ConfigurationError: For an unknown scheme, a malformed URL or a missing extra.
    """
    scheme = url.partition("://")[0].lower()
    if scheme == "memory":
        return MemoryCounter(clock)
    if scheme == "sqlite":
        from sessionauth.auth.throttle_sql import SQLiteCounter
        from sessionauth.stores.sqlite_files import database_path

        return SQLiteCounter(database_path(url), clock=clock, timeout=timeout)
    if scheme in ("postgresql", "postgres"):
        from sessionauth.auth.throttle_sql import PostgresCounter

        return PostgresCounter(url, clock=clock, timeout=timeout)
    if scheme in ("redis", "rediss", "redis+cluster", "redis+sentinel"):
        from sessionauth.auth.throttle_redis import RedisCounter
        from sessionauth.stores import _pop_query

        # One URL names both the sessions and the counters: the store's namespace holds both.
        url, url_prefix = _pop_query(url, "prefix")
        if prefix is None:
            prefix = DEFAULT_PREFIX if url_prefix is None else f"{url_prefix}attempts:"
        return RedisCounter.from_url(url, clock=clock, prefix=prefix, timeout=timeout)
    raise ConfigurationError(f"unknown attempt counter URL {url!r}; use one of {_SCHEMES}")


def _account_key(account: str) -> str:
    # normalize_email's canonical form without its validation: an address it would refuse is
    # still counted (under its own hash), so malformed input is throttled like any other. The
    # cut bounds the work; a usable address is far shorter (254 characters once normalised).
    folded = unicodedata.normalize("NFKC", account[:_MAX_ACCOUNT]).strip().casefold()
    normalised = unicodedata.normalize("NFKC", folded)
    return "a:" + hashlib.sha256(normalised.encode("utf-8", "surrogatepass")).hexdigest()


class LoginThrottle:
    """Limits failed logins per account and per client address.

    Args:
        counter: Where the counts live; share it between workers (not ``memory://``).
        clock: The time source for ``retry_after``; give the counter the same one.
        max_per_account: Failures allowed per account within ``account_window``.
        account_window: Seconds an account's window lasts from its first failure.
        max_per_address: Failures allowed per client address within ``address_window``.
        address_window: Seconds an address's window lasts from its first failure.
        ipv6_prefix: IPv6 addresses are counted per network of this prefix length (128 counts
            each address on its own).

    Raises:
        ConfigurationError: For a limit below 1, a non-positive window or a bad prefix length.
    """

    def __init__(
        self,
        counter: AttemptCounter,
        *,
        clock: Clock = system_clock,
        max_per_account: int = 5,
        account_window: float = 15 * 60,
        max_per_address: int = 50,
        address_window: float = 15 * 60,
        ipv6_prefix: int = 64,
    ):
        if max_per_account < 1 or max_per_address < 1:
            raise ConfigurationError("throttle limits must allow at least one attempt")
        if not (account_window > 0 and address_window > 0):
            raise ConfigurationError("throttle windows must be positive numbers of seconds")
        if not 1 <= ipv6_prefix <= 128:
            raise ConfigurationError("ipv6_prefix must be between 1 and 128")
        self._counter = counter
        self._clock = clock
        self._limits = {"account": max_per_account, "address": max_per_address}
        self._windows = {"account": account_window, "address": address_window}
        self._ipv6_prefix = ipv6_prefix

    def _address_key(self, address: str) -> str:
        try:
            ip = ipaddress.ip_address(address)
        except ValueError:
            # Not an IP (a missing peer, a Unix socket): still one bucket of its own.
            return "ip:" + address
        if ip.version == 6 and self._ipv6_prefix < 128:
            network = ipaddress.ip_network(f"{ip}/{self._ipv6_prefix}", strict=False)
            return f"ip:{network}"
        return f"ip:{ip}"

    def _keys(self, account: str, address: str) -> dict[str, str]:
        return {"account": _account_key(account), "address": self._address_key(address)}

    async def check(self, account: str, address: str) -> None:
        """Refuse the attempt if the account or the address has used up its failures.

        Call it before verifying the password. The same answer comes for existing and
        unknown accounts alike.

        Raises:
            TooManyAttempts: With ``retry_after`` the whole seconds until every exhausted
                limit has reset (at least 1).
            StoreUnavailable: If the counter's backend failed.
        """
        keys = self._keys(account, address)
        counts = await asyncio.gather(*(self._counter.count(key) for key in keys.values()))
        now = self._clock()
        wait = 0.0
        for kind, (count, reset_at) in zip(keys, counts, strict=True):
            if count >= self._limits[kind]:
                wait = max(wait, reset_at - now)
        if wait > 0:
            raise TooManyAttempts(retry_after=max(1, math.ceil(wait)))

    async def failed(self, account: str, address: str) -> None:
        """Count a failed login against both the account and the address.

        Raises:
            StoreUnavailable: If the counter's backend failed.
        """
        keys = self._keys(account, address)
        hits = await asyncio.gather(
            *(self._counter.hit(key, self._windows[kind]) for kind, key in keys.items())
        )
        for (kind, key), (count, _) in zip(keys.items(), hits, strict=True):
            if count == self._limits[kind]:
                # Logged once per window, when the limit is reached; the key holds no email.
                shown = key if kind == "address" else key[:14]
                security_log.warning(
                    "login throttled: %s limit reached (%s)",
                    kind,
                    shown,
                    extra={"event": "login_throttled", "reason": f"{kind} limit", "detail": shown},
                )

    async def succeeded(self, account: str, address: str) -> None:
        """Clear the account's failures after a successful login.

        The address keeps its count: one good password must not buy a sprayer a fresh
        budget against every other account.

        Raises:
            StoreUnavailable: If the counter's backend failed.
        """
        del address
        await self._counter.reset(_account_key(account))
