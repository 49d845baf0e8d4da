"""Login throttling: attempt counters per account and per client address.

A :class:`LoginThrottle` keeps two fixed-window counters in an :class:`AttemptCounter`:

* ``a:<sha256 of the normalised account>``: attempts against one account, from any address.
  The account is hashed so the backend never holds email addresses, and it is counted whether
  or not it exists: the throttle never consults the user store, so its answers cannot reveal
  which accounts are registered.
* ``ip:<client address>``: attempts from one address against any account, which slows down
  password spraying. IPv6 addresses are counted per /64 by default, since one host usually
  owns a whole /64 and could otherwise rotate through it.
* ``mfa:<sha256 of the user id>``: second-factor codes against one account
  (:meth:`LoginThrottle.reserve_code`), with the same limit and window as the account's
  passwords but a counter of its own, which only an accepted code clears. On the shared
  counter a right password cleared the wrong codes too, and whoever knew the password (the
  one case a second factor is there for) got a fresh budget of code guesses with each
  password step. Codes count on the address key with passwords.

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

The same class limits other requests that cost the server or a third party something: the
account lifecycle (:mod:`sessionauth.auth.lifecycle`) keeps a throttle per kind of mail, each
with its own ``scope`` (a key prefix), so sign-ups never use up anyone's login attempts.

Counters live in the same backend as sessions (see
:meth:`sessionauth.backends.Backend.attempt_counter`). Every backend failure
raises :class:`~sessionauth.errors.StoreUnavailable`: the login fails closed rather than
running unthrottled.
"""

from __future__ import annotations

import asyncio
import hashlib
import ipaddress
import logging
import math
import re
import unicodedata
from dataclasses import dataclass

from sessionauth.errors import ConfigurationError, StoreUnavailable, TooManyAttempts
from sessionauth.policy import Clock, system_clock
from sessionauth.stores.attempts import AttemptCounter

__all__ = ["Attempt", "LoginThrottle"]

_MAX_ACCOUNT = 4096
_SCOPE = re.compile(r"[a-z][a-z0-9-]{0,31}:")

security_log = logging.getLogger("sessionauth.security")


def _code_key(user_id: str) -> str:
    # Hashed like accounts: hex never holds a ':', so no other scope's key can equal it.
    return "mfa:" + hashlib.sha256(user_id.encode("utf-8", "surrogatepass")).hexdigest()


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
        scope: Prefixed to every key, so throttles of different requests sharing one counter
            count apart (``""``: the login throttle's keys).

    Raises:
        ConfigurationError: For a limit below 1, a non-positive window, a bad prefix length
            or a scope that is not lower-case letters, digits and ``-`` ending in ``:``.
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
        scope: str = "",
    ):
        if max_per_account < 1 or max_per_address < 1:
            raise ConfigurationError("throttle limits must allow at least one attempt")
        if not (account_window > 0 and address_window > 0):
            raise ConfigurationError("throttle windows must be positive numbers of seconds")
        if not 1 <= ipv6_prefix <= 128:
            raise ConfigurationError("ipv6_prefix must be between 1 and 128")
        if scope and not _SCOPE.fullmatch(scope):
            raise ConfigurationError(f"invalid throttle scope {scope!r}: like 'signup:'")
        self._scope = scope
        self._counter = counter
        self._clock = clock
        self._limits = {"account": max_per_account, "address": max_per_address}
        self._windows = {"account": account_window, "address": address_window}
        self._ipv6_prefix = ipv6_prefix
        # Give-backs left to finish on their own after an outage (see release); held here so
        # that they are not collected while they wait.
        self._giving_back: set[asyncio.Task[None]] = set()

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
        return await self._reserve(self._scope + _account_key(account), address)

    async def reserve_code(self, user_id: str, address: str) -> Attempt:
        """Take one attempt at a second-factor code on the user's code counter and the address.

        Like :meth:`reserve`, with the account's code counter in place of its password
        counter: the password step (:meth:`succeeded` on a password's attempt) never clears
        it, only an accepted code does.

        Raises:
            TooManyAttempts: As :meth:`reserve`.
            StoreUnavailable: As :meth:`reserve`.
        """
        return await self._reserve(self._scope + _code_key(user_id), address)

    async def _reserve(self, account_key: str, address: str) -> Attempt:
        keys = {"account": account_key, "address": self._scope + self._address_key(address)}
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
                shown = key if kind == "address" else key[: len(self._scope) + 14]
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

    async def clear_account(self, account: str, user_id: str | None = None) -> None:
        """Forget the account's attempts (and, given ``user_id``, its code attempts).

        An administrator's unlock: a user whom someone else's wrong guesses keep refusing
        signs in again at once. The addresses' counts stay, so a guesser gains nothing.

        Raises:
            StoreUnavailable: If the counter's backend failed.
        """
        await self._counter.reset(self._scope + _account_key(account))
        if user_id is not None:
            await self._counter.reset(self._scope + _code_key(user_id))

    async def succeeded(self, attempt: Attempt) -> None:
        """Clear the account's attempts and give back this attempt's place on the address.

        Only the counter the attempt was taken on is cleared: a right password clears the
        account's passwords, an accepted code its codes.

        The address keeps its other attempts: one good password must not buy a sprayer a
        fresh budget against every other account.

        Raises:
            StoreUnavailable: If the counter's backend failed.
        """
        await self._counter.reset(attempt.account[0])
        await self._counter.release(*attempt.address)

    async def release(self, attempt: Attempt, *, after: BaseException | None = None) -> None:
        """Give back an attempt that judged no password (refused before hashing, an outage).

        Never raises for the backend: a place not given back only counts against the caller
        until the window ends, and the error that stopped the attempt is the one to report.

        Args:
            attempt: What :meth:`reserve` took.
            after: The error that stopped the attempt. After a ``StoreUnavailable`` the
                counter may be down too, and waiting out its timeout once more (per key) would
                turn the request's fast 503 into a slow one: the places are then given back
                in the background (:meth:`given_back` waits for them).
        """
        taken = [attempt.account, attempt.address]
        if not isinstance(after, StoreUnavailable):
            await self._give_back(taken)
            return
        task = asyncio.get_running_loop().create_task(self._give_back(taken))
        self._giving_back.add(task)
        task.add_done_callback(self._giving_back.discard)

    async def given_back(self) -> None:
        """Wait until the give-backs that :meth:`release` left running after an outage end."""
        while self._giving_back:
            await asyncio.gather(*self._giving_back)

    async def _give_back(self, taken: list[tuple[str, float]]) -> None:
        async def one(key: str, reset_at: float) -> None:
            try:
                await self._counter.release(key, reset_at)
            except StoreUnavailable:
                security_log.warning("throttle: an attempt could not be given back (%s)", key[:14])

        # Both at once: a slow counter costs one timeout, not one per key.
        await asyncio.gather(*(one(key, reset_at) for key, reset_at in taken))
