"""The reference server's settings, read from ``SESSIONAUTH_*`` environment variables.

:class:`Settings` is the typed form of DESIGN.md section 8. :func:`findings` lists everything
unsafe about a configuration, each with its fix; :func:`enforce` refuses to start production
with any of them. :func:`load_keyring` turns ``SESSIONAUTH_SECRET`` into a
:class:`~sessionauth.tokens.Keyring`; in development, when it is unset, a key is generated once
into the data directory (``SESSIONAUTH_DATA_DIR``, file mode 0600) so sessions survive restarts
and every worker agrees on the key.
"""

from __future__ import annotations

import ipaddress
import logging
import os
import secrets
import stat
from pathlib import Path
from typing import Annotated, Any, Literal

from pydantic import Field, SecretStr, ValidationError, field_validator
from pydantic_settings import BaseSettings, NoDecode, SettingsConfigDict

from sessionauth.auth.admin_rules import DEFAULT_ROLES, role_set
from sessionauth.auth.client_address import trusted_networks
from sessionauth.config import CookieConfig
from sessionauth.errors import ConfigurationError
from sessionauth.origins import validate_origins
from sessionauth.policy import TimeoutPolicy
from sessionauth.tokens import MIN_KEY_BYTES, Keyring

__all__ = ["Settings", "enforce", "findings", "load_keyring", "load_settings", "new_secret"]

logger = logging.getLogger("sessionauth.server")

SECRET_FILE = "secret"  # noqa: S105 - a file name, not a password
_GENERATE = "generate one with `sessionauth secret`"
MIN_METRICS_TOKEN_BYTES = 16

CSV = Annotated[tuple[str, ...], NoDecode]
"""A comma-separated environment variable, read as a tuple of stripped, non-empty items."""


class Settings(BaseSettings):
    """Everything ``sessionauth serve`` and ``create_app()`` read from the environment.

    Attributes:
        env: ``development`` (plain-HTTP localhost) or ``production``.
        secret: The keyring, comma-separated, newest key first (``SESSIONAUTH_SECRET``).
        data_dir: Where development keeps its generated secret and the purge lock file.
        database_url: The users database: ``sqlite:///PATH`` or ``postgresql://…``.
        store_url: The session store URL; ``None`` means the same as ``database_url``.
        allowed_origins: Trusted origins for CORS and the CSRF origin layer.
        cookie_secure: Force the cookie's ``Secure`` flag; ``None`` means on in production.
        cookie_name: The session cookie's name; ``None`` means ``__Host-session`` when Secure,
            else ``session``.
        cookie_samesite: The cookies' ``SameSite``: ``lax`` (default), ``strict``, or ``none``
            (front ends on another site; needs Secure).
        trusted_proxies: Addresses or networks whose ``X-Forwarded-For`` and
            ``X-Forwarded-Proto`` count; a set covering every address is refused like ``*``.
        idle_timeout: Seconds of inactivity after which a session dies.
        absolute_timeout: Seconds after login after which a session dies regardless.
        purge_interval: Seconds between sweeps of expired sessions (SQL stores).
        metrics_token: Bearer token ``/metrics`` asks for; without one, ``/metrics`` is open
            in development and not served in production.
        roles: The roles accounts may have (``SESSIONAUTH_ROLES``); must include ``admin``.
        log_format: ``text`` (human lines) or ``json`` (one JSON object per line, security
            events with structured fields; see :mod:`sessionauth.server.log_format`).
    """

    model_config = SettingsConfigDict(env_prefix="SESSIONAUTH_", extra="forbid", frozen=True)

    env: Literal["development", "production"] = "development"
    secret: SecretStr | None = None
    data_dir: Path = Path(".sessionauth")
    database_url: str = "sqlite:///./sessionauth.db"
    store_url: str | None = None
    allowed_origins: CSV = ()
    cookie_secure: bool | None = None
    cookie_name: str | None = None
    cookie_samesite: Literal["lax", "strict", "none"] = "lax"
    trusted_proxies: CSV = ()
    idle_timeout: float = Field(default=24 * 3600, gt=0)
    absolute_timeout: float = Field(default=7 * 24 * 3600, gt=0)
    purge_interval: float = Field(default=300, gt=0)
    metrics_token: SecretStr | None = None
    roles: CSV = DEFAULT_ROLES
    log_format: Literal["text", "json"] = "text"

    @field_validator("allowed_origins", "trusted_proxies", "roles", mode="before")
    @classmethod
    def _split(cls, value: Any) -> Any:
        if isinstance(value, str):
            return tuple(part.strip() for part in value.split(",") if part.strip())
        return value

    @field_validator("cookie_samesite", mode="before")
    @classmethod
    def _lower(cls, value: Any) -> Any:
        return value.strip().lower() if isinstance(value, str) else value

    @field_validator(
        "secret", "store_url", "cookie_secure", "cookie_name", "metrics_token", mode="before"
    )
    @classmethod
    def _blank_is_unset(cls, value: Any) -> Any:
        # `SESSIONAUTH_SECRET=` in a shell or compose file means "not set", not "empty key".
        return None if isinstance(value, str) and not value.strip() else value

    @field_validator("database_url")
    @classmethod
    def _users_database(cls, value: str) -> str:
        # Checked here, so that the message names this variable: the session store defaults to
        # the same URL and would otherwise refuse it as an unknown *session store*.
        if value.partition("://")[0].lower() not in ("sqlite", "postgresql", "postgres"):
            raise ValueError("not a users database URL: use sqlite:///PATH or postgresql://…")
        return value

    @field_validator("roles")
    @classmethod
    def _known_roles(cls, value: tuple[str, ...]) -> tuple[str, ...]:
        role_set(value)  # raises a ValueError naming the problem
        return value

    @property
    def production(self) -> bool:
        """Whether this is a production configuration (the properties below say what follows)."""
        return self.env == "production"

    @property
    def strict(self) -> bool:
        """Whether any finding (see :func:`findings`), or a Redis that may evict, stops the start.

        Production only: development logs them as warnings and starts.
        """
        return self.production

    @property
    def ephemeral_stores_allowed(self) -> bool:
        """Whether ``memory://`` sessions and an in-memory SQLite user database are acceptable.

        Development only: production must keep sessions and accounts across restarts.
        """
        return not self.production

    @property
    def generates_secret(self) -> bool:
        """Whether a missing ``SESSIONAUTH_SECRET`` is generated into the data directory.

        Development only: production needs a fixed secret of its own.
        """
        return not self.production

    @property
    def requires_secure_cookie(self) -> bool:
        """Whether a cookie without ``Secure`` is a finding: production (served over HTTPS)."""
        return self.production

    @property
    def docs_enabled(self) -> bool:
        """Whether ``/docs`` serves Swagger UI (it loads its script from a CDN): development only.

        ``/openapi.json`` is served either way.
        """
        return not self.production

    @property
    def bootstrap_enabled(self) -> bool:
        """Whether an empty user database gets a first administrator: development only."""
        return not self.production

    @property
    def metrics_access(self) -> Literal["token", "open", "off"]:
        """Who may read ``/metrics``.

        ``token`` (``Authorization: Bearer`` with :attr:`metrics_token`) when a token is set;
        otherwise ``open`` in development and ``off`` (404) in production, where login and
        error rates are nobody else's business.
        """
        if self.metrics_token is not None:
            return "token"
        return "off" if self.production else "open"

    @property
    def hsts(self) -> bool:
        """Whether every response carries ``Strict-Transport-Security``: production only."""
        return self.production

    @property
    def session_store_url(self) -> str:
        """The session store URL in force (``store_url``, else ``database_url``)."""
        return self.store_url or self.database_url

    @property
    def secure_cookie(self) -> bool:
        """Whether the session cookie is ``Secure`` (forced, else on in production only)."""
        return self.requires_secure_cookie if self.cookie_secure is None else self.cookie_secure

    def cookie(self) -> CookieConfig:
        """Return the session cookie settings (validated: a bad name fails at start-up)."""
        return CookieConfig(
            secure=self.secure_cookie, name=self.cookie_name or "", same_site=self.cookie_samesite
        )

    def policy(self) -> TimeoutPolicy:
        """Return the session timeout policy these settings describe.

        Raises:
            ConfigurationError: If the timeouts contradict each other.
        """
        touch = min(60.0, self.idle_timeout / 2)
        return TimeoutPolicy(
            idle_timeout=self.idle_timeout,
            absolute_timeout=self.absolute_timeout,
            touch_interval=touch,
        )


def load_settings(**overrides: Any) -> Settings:
    """Read the settings from the environment, with ``overrides`` taking precedence.

    Raises:
        ConfigurationError: Naming each variable whose value is invalid.
    """
    try:
        return Settings(**overrides)
    except ValidationError as exc:
        problems = "; ".join(
            f"SESSIONAUTH_{'_'.join(str(p) for p in error['loc']).upper()}: {error['msg']}"
            for error in exc.errors(include_url=False, include_input=False)
        )
        raise ConfigurationError(f"invalid settings: {problems}") from None


def new_secret() -> str:
    """Return a fresh secret key: 48 random bytes as URL-safe text (64 characters)."""
    return secrets.token_urlsafe(48)


def _secret_keys(settings: Settings) -> list[str]:
    if settings.secret is None:
        return []
    return [k.strip() for k in settings.secret.get_secret_value().split(",") if k.strip()]


def _secret_findings(settings: Settings) -> list[str]:
    keys = _secret_keys(settings)
    out = []
    if settings.secret is not None and not keys:
        out.append(f"SESSIONAUTH_SECRET holds no key: {_GENERATE} and set it")
    elif not keys and not settings.generates_secret:
        out.append(
            "SESSIONAUTH_SECRET is not set: production needs a fixed, strong secret key; "
            f"{_GENERATE} and set SESSIONAUTH_SECRET"
        )
    for index, key in enumerate(keys, start=1):
        if len(key.encode()) < MIN_KEY_BYTES:
            out.append(
                f"SESSIONAUTH_SECRET key #{index} is weak (shorter than {MIN_KEY_BYTES} bytes): "
                f"{_GENERATE} and use it instead"
            )
    if not keys and settings.generates_secret:
        path = settings.data_dir / SECRET_FILE
        try:
            mode = path.stat().st_mode
        except OSError:
            mode = 0
        if mode & (stat.S_IRWXG | stat.S_IRWXO):
            out.append(f"the generated secret {path} is readable by others: chmod 600 {path}")
    return out


def _origin_findings(settings: Settings) -> list[str]:
    origins = settings.allowed_origins
    if any("*" in origin for origin in origins):
        return [
            "SESSIONAUTH_ALLOWED_ORIGINS contains '*': with credentials, any site could act as "
            "the signed-in user; list each trusted origin exactly (https://app.example.com)"
        ]
    try:
        validate_origins(origins)
    except ConfigurationError as exc:
        return [f"SESSIONAUTH_ALLOWED_ORIGINS: {exc}"]
    return []


def _proxy_findings(settings: Settings) -> list[str]:
    out = []
    for proxy in settings.trusted_proxies:
        if proxy == "*":
            continue
        try:
            ipaddress.ip_network(proxy, strict=False)
        except ValueError:
            out.append(
                f"SESSIONAUTH_TRUSTED_PROXIES: {proxy!r} is not an IP address or network "
                "(write 10.0.0.1 or 10.0.0.0/8)"
            )
    if out:
        return out
    # '*' and any set whose union is every address (0.0.0.0/0, ::/0, 0.0.0.0/1 with
    # 128.0.0.0/1, ::ffff:0:0/96) let every client name itself: refused in every environment.
    try:
        trusted_networks(settings.trusted_proxies)
    except ConfigurationError as exc:
        return [f"SESSIONAUTH_TRUSTED_PROXIES: {exc}"]
    return []


def findings(settings: Settings) -> list[str]:
    """Return every unsafe or inconsistent thing about ``settings``, each naming its fix.

    Production must have none (see :func:`enforce`); ``sessionauth check`` prints them all for
    any environment.
    """
    out = _secret_findings(settings)
    if not settings.ephemeral_stores_allowed:
        if settings.session_store_url.partition("://")[0].lower() == "memory":
            out.append(
                "SESSIONAUTH_STORE_URL is memory://: sessions are lost on restart and not shared "
                "between workers; use sqlite:///PATH, redis://… or postgresql://…"
            )
        if settings.database_url.strip().lower() == "sqlite:///:memory:":
            out.append(
                "SESSIONAUTH_DATABASE_URL is an in-memory SQLite database: accounts vanish on "
                "restart; use sqlite:///PATH or postgresql://…"
            )
    if settings.requires_secure_cookie and not settings.secure_cookie:
        out.append(
            "SESSIONAUTH_COOKIE_SECURE is off in production: the session cookie would travel "
            "over plain HTTP; serve over HTTPS and set SESSIONAUTH_COOKIE_SECURE=true "
            "(or unset it)"
        )
    if settings.cookie_samesite == "none" and not settings.secure_cookie:
        out.append(
            "SESSIONAUTH_COOKIE_SAMESITE is none but the cookie is not Secure: browsers drop "
            "such cookies; serve over HTTPS with SESSIONAUTH_COOKIE_SECURE=true, or use lax"
        )
    out.extend(_origin_findings(settings))
    out.extend(_proxy_findings(settings))
    token = settings.metrics_token
    if token is not None and len(token.get_secret_value().encode()) < MIN_METRICS_TOKEN_BYTES:
        out.append(
            f"SESSIONAUTH_METRICS_TOKEN is shorter than {MIN_METRICS_TOKEN_BYTES} bytes: easy to "
            f"guess; {_GENERATE}"
        )
    try:
        settings.policy()
    except ConfigurationError as exc:
        out.append(f"SESSIONAUTH_IDLE_TIMEOUT / SESSIONAUTH_ABSOLUTE_TIMEOUT: {exc}")
    return out


def enforce(settings: Settings) -> None:
    """Refuse a production configuration with findings; log them in development.

    Raises:
        ConfigurationError: In production, listing every finding.
    """
    found = findings(settings)
    if found and settings.strict:
        raise ConfigurationError(
            "refusing to start in production:\n" + "\n".join(f"- {item}" for item in found)
        )
    for item in found:
        logger.warning("configuration: %s", item)


def load_keyring(settings: Settings) -> Keyring:
    """Return the keyring of ``SESSIONAUTH_SECRET``, or development's generated one.

    In development without a secret, the key lives in ``<data_dir>/secret``: created once,
    atomically (several workers starting together all end up with the same key), mode 0600.

    Raises:
        ConfigurationError: If a key is weak, or production has no secret.
    """
    keys = _secret_keys(settings)
    if keys:
        try:
            return Keyring(keys)
        except ConfigurationError as exc:
            raise ConfigurationError(f"SESSIONAUTH_SECRET: {exc}") from None
    if not settings.generates_secret:
        raise ConfigurationError(f"SESSIONAUTH_SECRET is not set: {_GENERATE} and set it")
    return Keyring([_development_secret(settings.data_dir)])


def _development_secret(data_dir: Path) -> str:
    path = data_dir / SECRET_FILE
    try:
        return _read_secret(path)
    except FileNotFoundError:
        pass
    data_dir.mkdir(mode=0o700, parents=True, exist_ok=True)
    # Write a private temporary file, then link it into place: the link either creates the
    # complete file or fails because another worker won, so nobody ever reads a partial key.
    temporary = data_dir / f".{SECRET_FILE}.{os.getpid()}.{secrets.token_hex(4)}"
    descriptor = os.open(temporary, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    try:
        with os.fdopen(descriptor, "w") as file:
            file.write(new_secret() + "\n")
        try:
            os.link(temporary, path)
        except FileExistsError:
            pass
        else:
            logger.info("generated a development secret in %s", path)
    finally:
        temporary.unlink(missing_ok=True)
    return _read_secret(path)


def _read_secret(path: Path) -> str:
    value = path.read_text().strip()
    if len(value.encode()) < MIN_KEY_BYTES:
        raise ConfigurationError(
            f"{path} holds a weak secret: delete it to have a new one generated"
        )
    return value
