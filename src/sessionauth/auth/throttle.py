"""Login throttling: attempt counters per account and per client address.

A :class:`LoginThrottle` keeps two fixed-window counters in an :class:`AttemptCounter`:

* ``a:<sha256 of the normalised account>``: attempts against one account, from any address.
  The account is hashed so the backend never holds email addresses, and it is counted whether
  or not it exists: the throttle never consults the user store, so its answers cannot reveal
  which accounts are registered.
* ``ip:<client address>``: attempts from one address against any account, which slows down
  password spraying. IPv6 addresses are counted per /64 by default, since one host usually
  owns a whole /64 and could otherwise rotate through it.

A window starts at the first attempt and lasts ``*_window`` seconds; when it ends the count is
zero again, so there is no permanent lockout for an attacker to impose on a victim.

The login flow calls :meth:`LoginThrottle.reserve` *before* verifying the password: one atomic
increment-and-compare per key takes an attempt or refuses it. Checking a count first and
recording the failure after the hash would let every request of a burst pass the check
together: 40 concurrent guesses were all verified. A reservation is the failure, unless the
password was right (:meth:`~LoginThrottle.succeeded` clears the account and gives back this
attempt's place on the address, never the address's other attempts) or no password was judged
at all (:meth:`~LoginThrottle.release`). The two keys are reserved one by one, each in one
command, so they may live on different Redis Cluster nodes; when one refuses, the other's
reservation is given back.

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
from dataclasses import dataclass
from typing import Self

from sessionauth.errors import ConfigurationError, StoreUnavailable, TooManyAttempts
from sessionauth.policy import Clock, system_clock
from sessionauth.stores.base import DEFAULT_TIMEOUT

__all__ = [
    "DEFAULT_PREFIX",
    "Attempt",
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
    """Counts attempts per key in a fixed window that starts at the key's first attempt.

    Every implementation is atomic per key (concurrent :meth:`reserve` calls never lose a count
    and never grant more than the limit) and decides windows by its injected clock, never the
    backend's own.
    """

    @abc.abstractmethod
    async def reserve(self, key: str, window: float, limit: int) -> tuple[bool, int, float]:
        """Take one of ``key``'s ``limit`` attempts: one atomic increment-and-compare.

        A key whose window is over (or that was never used) starts a new window of ``window``
        seconds with a count of 1. Otherwise the count grows by one while it is below
        ``limit``; at the limit nothing changes and the attempt is refused.

        Returns:
            ``(granted, count, reset_at)``: whether the attempt was taken, the count after
            this call, and when the key's window ends.

        Raises:
            StoreUnavailable: If the backend failed or did not answer in time.
        """

    @abc.abstractmethod
    async def release(self, key: str, reset_at: float) -> None:
        """Give back one attempt taken in ``key``'s window ending at ``reset_at``.

        Nothing happens once that window is over or the key was reset: a later window's
        attempts are never given back, and a count never goes below zero. A key given back
        to zero may be forgotten altogether (its next attempt starts a new window).

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
        """Forget ``key``'s attempts.

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

    async def reserve(self, key: str, window: float, limit: int) -> tuple[bool, int, float]:
        """Take one attempt of ``key`` if below ``limit``; nothing is awaited, so it is atomic."""
        now = self._clock()
        count, reset_at = self._entries.get(key, (0, now))
        if reset_at <= now:
            count, reset_at = 0, now + window
        if count >= limit:
            return False, count, reset_at
        self._entries[key] = (count + 1, reset_at)
        return True, count + 1, reset_at

    async def release(self, key: str, reset_at: float) -> None:
        """Give back one attempt of the window ending at ``reset_at``, if it is still current."""
        count, current = self._entries.get(key, (0, reset_at))
        if current == reset_at and count > 1:
            self._entries[key] = (count - 1, reset_at)
        elif current == reset_at:
            self._entries.pop(key, None)

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


@dataclass(frozen=True, slots=True)
class Attempt:
    """One attempt reserved by :meth:`LoginThrottle.reserve`.

    Attributes:
        account: The account's counter key and the end of the window the attempt was taken in.
        address: The same for the client address.
    """

    account: tuple[str, float]
    address: tuple[str, float]


class LoginThrottle:
    """Limits login attempts per account and per client address.

    Args:
        counter: Where the counts live; share it between workers (not ``memory://``).
        clock: The time source for ``retry_after``; give the counter the same one.
        max_per_account: Attempts allowed per account within ``account_window`` (pending ones
            included; a success clears the account).
        account_window: Seconds an account's window lasts from its first attempt.
        max_per_address: Attempts allowed per client address within ``address_window``
            (successes are given back).
        address_window: Seconds an address's window lasts from its first attempt.
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
        if isinstance(ip, ipaddress.IPv6Address) and ip.scope_id is not None:
            ip = ipaddress.IPv6Address(ip.packed)  # a %zone is free text, not part of the host
        if ip.version == 6 and self._ipv6_prefix < 128:
            network = ipaddress.ip_network(f"{ip}/{self._ipv6_prefix}", strict=False)
            return f"ip:{network}"
        return f"ip:{ip}"

    def _keys(self, account: str, address: str) -> dict[str, str]:
        return {"account": _account_key(account), "address": self._address_key(address)}

    async def reserve(self, account: str, address: str) -> Attempt:
        """Take one attempt on the account and on the address, or refuse both.

        Call it before verifying the password: the attempt counts as a failure unless it is
        then passed to :meth:`succeeded` or :meth:`release`. The same answer comes for existing
        and unknown accounts alike.

        Raises:
            TooManyAttempts: With ``retry_after`` the whole seconds until every exhausted
                limit has reset (at least 1); nothing stays reserved.
            StoreUnavailable: If the counter's backend failed; nothing stays reserved that
                the backend acknowledged.
        """
        keys = self._keys(account, address)
        # One command per key, never one spanning both: on Redis Cluster they live in
        # different slots. Whatever one key grants while the other refuses is given back.
        answers = await asyncio.gather(
            *(
                self._counter.reserve(key, self._windows[kind], self._limits[kind])
                for kind, key in keys.items()
            ),
            return_exceptions=True,
        )
        taken: list[tuple[str, float]] = []
        wait, error = 0.0, None
        for (kind, key), answer in zip(keys.items(), answers, strict=True):
            if isinstance(answer, BaseException):
                error = answer
                continue
            granted, count, reset_at = answer
            if not granted:
                wait = max(wait, reset_at - self._clock())
                continue
            taken.append((key, reset_at))
            if count == self._limits[kind]:
                # Logged once per window, when the limit is used up; the key holds no email.
                shown = key if kind == "address" else key[:14]
                security_log.warning(
                    "login throttled: %s limit reached (%s)",
                    kind,
                    shown,
                    extra={"event": "login_throttled", "reason": f"{kind} limit", "detail": shown},
                )
        if error is None and len(taken) == len(keys):
            return Attempt(account=taken[0], address=taken[1])
        await self._give_back(taken)
        if error is not None:
            raise error
        raise TooManyAttempts(retry_after=max(1, math.ceil(wait)))

    async def succeeded(self, attempt: Attempt) -> None:
        """Clear the account's attempts and give back this attempt's place on the address.

        The address keeps its other attempts: one good password must not buy a sprayer a
        fresh budget against every other account.

        Raises:
            StoreUnavailable: If the counter's backend failed.
        """
        await self._counter.reset(attempt.account[0])
        await self._counter.release(*attempt.address)

    async def release(self, attempt: Attempt) -> None:
        """Give back an attempt that judged no password (refused before hashing, an outage).

        Never raises for the backend: a place not given back only counts against the caller
        until the window ends, and the error that stopped the attempt is the one to report.
        """
        await self._give_back([attempt.account, attempt.address])

    async def _give_back(self, taken: list[tuple[str, float]]) -> None:
        for key, reset_at in taken:
            try:
                await self._counter.release(key, reset_at)
            except StoreUnavailable:
                security_log.warning("throttle: an attempt could not be given back (%s)", key[:14])
