"""Typed, validated settings for the session cookie.

Every field is keyword-only and checked when the object is built, so a misconfiguration fails at
start-up with a message that says the fix, never at the first request. The defaults are the
secure ones; :meth:`CookieConfig.development` is the single relaxation for plain-HTTP localhost.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Literal

from sessionauth.errors import ConfigurationError

__all__ = ["CookieConfig"]

SameSite = Literal["lax", "strict", "none"]

_TOKEN_CHARS = frozenset(
    "!#$%&'*+-.^_`|~0123456789abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ"
)


@dataclass(frozen=True, kw_only=True, slots=True)
class CookieConfig:
    """How the session cookie is named and flagged.

    Attributes:
        secure: Send the cookie over HTTPS only. Turn off only for plain-HTTP development.
        name: Cookie name; defaults to ``__Host-session`` when ``secure`` (the browser then
            refuses the cookie unless it is Secure, host-only and on ``/``, which stops
            subdomains from planting or overwriting it) and ``session`` otherwise.
        same_site: ``lax`` (default), ``strict``, or ``none`` (requires ``secure``).
        path: Cookie path; must be ``/`` for ``__Host-`` names.
        domain: Cookie domain; ``None`` (default) keeps the cookie host-only.
        persistent: Give a remembered session's cookie (a login with ``remember=True``, an
            anonymous session) a ``Max-Age`` reaching its absolute deadline, so it survives
            browser restarts; ``False`` makes every cookie a browser-session cookie. A login
            without remember-me always gets a browser-session cookie.
        presession_name: The pre-session cookie's name (see :mod:`sessionauth.presession`);
            defaults to ``__Host-csrf`` when ``secure`` and ``csrf`` otherwise. It is always
            host-only on ``/``, with the session cookie's ``Secure`` and ``SameSite``.

    The cookies are always ``HttpOnly``: scripts never need the session token.
    """

    secure: bool = True
    name: str = field(default="")
    same_site: SameSite = "lax"
    path: str = "/"
    domain: str | None = None
    persistent: bool = True
    presession_name: str = field(default="")

    def __post_init__(self) -> None:
        if not self.name:
            object.__setattr__(self, "name", "__Host-session" if self.secure else "session")
        if not self.presession_name:
            object.__setattr__(self, "presession_name", "__Host-csrf" if self.secure else "csrf")
        for name in (self.name, self.presession_name):
            if not set(name) <= _TOKEN_CHARS:
                raise ConfigurationError(f"invalid cookie name {name!r}")
        if self.presession_name == self.name:
            raise ConfigurationError("the pre-session cookie needs a name of its own")
        if self.presession_name.startswith(("__Host-", "__Secure-")) and not self.secure:
            raise ConfigurationError("a __Host- or __Secure- cookie must be secure")
        if self.same_site not in ("lax", "strict", "none"):
            raise ConfigurationError("same_site must be 'lax', 'strict' or 'none'")
        if self.same_site == "none" and not self.secure:
            raise ConfigurationError("same_site='none' requires secure=True (browsers drop it)")
        if self.name.startswith("__Host-") and (
            not self.secure or self.path != "/" or self.domain is not None
        ):
            raise ConfigurationError(
                "a __Host- cookie must be secure, on path '/', with no domain; "
                "pick another name or drop the domain"
            )
        if self.name.startswith("__Secure-") and not self.secure:
            raise ConfigurationError("a __Secure- cookie must be secure")

    @classmethod
    def development(cls) -> CookieConfig:
        """Plain-HTTP localhost: drops ``Secure`` and the ``__Host-`` prefix, nothing else."""
        return cls(secure=False)

    def attributes(self) -> str:
        """Return the ``Set-Cookie`` attributes shared by setting and clearing the cookie."""
        parts = [f"Path={self.path}"]
        if self.domain:
            parts.append(f"Domain={self.domain}")
        return self._flags(parts)

    def presession_attributes(self) -> str:
        """Return the pre-session cookie's attributes: host-only on ``/``, the session's flags."""
        return self._flags(["Path=/"])

    def _flags(self, parts: list[str]) -> str:
        parts.append("HttpOnly")
        if self.secure:
            parts.append("Secure")
        parts.append(f"SameSite={self.same_site.capitalize()}")
        return "; ".join(parts)
