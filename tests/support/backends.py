"""Views that own their backend, for tests that need one store on a URL and nothing else."""

from __future__ import annotations

from typing import Any

from sessionauth.backends import open_backend
from sessionauth.policy import Clock, system_clock
from sessionauth.stores.attempts import AttemptCounter
from sessionauth.stores.base import DEFAULT_TIMEOUT
from sessionauth.stores.users import DEFAULT_TABLE, UserStore


def user_store(
    url: str,
    *,
    table: str = DEFAULT_TABLE,
    clock: Clock = system_clock,
    timeout: float = DEFAULT_TIMEOUT,
) -> UserStore:
    """Return the user store on ``url``; closing it closes its backend."""
    backend = open_backend(url, clock=clock, timeout=timeout)
    return backend.user_store(table=table, owned=True)


def attempt_counter(
    url: str, *, clock: Clock = system_clock, timeout: float = DEFAULT_TIMEOUT, **options: Any
) -> AttemptCounter:
    """Return the attempt counter on ``url``; closing it closes its backend."""
    backend = open_backend(url, clock=clock, timeout=timeout)
    return backend.attempt_counter(owned=True, **options)
