"""The reference server's settings, read from ``SESSIONAUTH_*`` environment variables.

:class:`Settings` is the typed form of DESIGN.md section 8, and the one place that says what
production implies (:attr:`~Settings.strict`, :attr:`~Settings.docs_enabled`,
:attr:`~Settings.bootstrap_enabled`, :attr:`~Settings.metrics_access`, :attr:`~Settings.hsts`,
…): the app and the CLI read those, never ``env`` itself. What is unsafe about a configuration
is listed by :mod:`sessionauth.server.settings_findings`; the secret key comes from
:mod:`sessionauth.server.secret_key`.
"""

from __future__ import annotations

import difflib
import os
from collections.abc import Mapping
from email.utils import parseaddr
from pathlib import Path
from typing import Annotated, Any, Literal

from pydantic import Field, SecretStr, ValidationError, field_validator
from pydantic_settings import BaseSettings, NoDecode, SettingsConfigDict

from sessionauth.auth.admin_rules import DEFAULT_ROLES, role_set
from sessionauth.backends.url_checks import check_url
from sessionauth.config import CookieConfig
from sessionauth.errors import ConfigurationError
from sessionauth.policy import TimeoutPolicy
from sessionauth.stores.base import DEFAULT_MAX_SESSIONS

__all__ = ["Settings", "load_settings", "unknown_variables"]

_PREFIX = "SESSIONAUTH_"

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
        short_absolute_timeout: The absolute timeout of a login without "keep me signed in"
            (``remember``), whose cookie is a browser-session cookie; at most
            ``absolute_timeout`` applies.
        purge_interval: Seconds between sweeps of expired sessions (SQL stores).
        max_sessions_per_user: Live sessions one user may have (1 to 100,000); a login beyond
            it ends the user's oldest session (``SESSIONAUTH_MAX_SESSIONS_PER_USER``).
        metrics_token: Bearer token ``/metrics`` asks for; without one, ``/metrics`` is open
            in development and not served in production.
        roles: The roles accounts may have (``SESSIONAUTH_ROLES``); must include ``admin``.
        log_format: ``text`` (human lines) or ``json`` (one JSON object per line, security
            events with structured fields; see :mod:`sessionauth.server.log_format`).
        signup: ``off`` (the default: accounts are made by administrators; ``/signup`` is
            404) or ``open`` (anyone may sign up; see :mod:`sessionauth.auth.lifecycle`).
        public_url: The site's public URL (``https://host[:port]``), which mailed links
            start with; never taken from a request's ``Host`` header, which a client writes.
        require_verified: Refuse logins (403 ``Email not verified``, after a right password)
            to accounts whose email is not confirmed (``SESSIONAUTH_REQUIRE_VERIFIED``).
        smtp_url: Where account mail goes: ``smtp://user:pass@host:587`` (STARTTLS),
            ``smtps://…`` (TLS), ``smtp://host:25?starttls=false`` (plain, no credentials in
            production). Unset: development writes mail to files under ``data_dir/mail``;
            production sends none.
        mail_from: The ``From`` of account mail (``SESSIONAUTH_MAIL_FROM``).
        mail_templates: A directory whose templates override the default mails.
    """

    model_config = SettingsConfigDict(env_prefix=_PREFIX, extra="forbid", frozen=True)

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
    short_absolute_timeout: float = Field(default=12 * 3600, gt=0)
    purge_interval: float = Field(default=300, gt=0)
    max_sessions_per_user: int = Field(default=DEFAULT_MAX_SESSIONS, ge=1, le=100_000)
    metrics_token: SecretStr | None = None
    roles: CSV = DEFAULT_ROLES
    log_format: Literal["text", "json"] = "text"
    signup: Literal["off", "open"] = "off"
    public_url: str | None = None
    require_verified: bool = False
    smtp_url: SecretStr | None = None
    mail_from: str | None = None
    mail_templates: Path | None = None

    @field_validator("allowed_origins", "trusted_proxies", "roles", mode="before")
    @classmethod
    def _split(cls, value: Any) -> Any:
        if isinstance(value, str):
            return tuple(part.strip() for part in value.split(",") if part.strip())
        return value

    @field_validator("cookie_samesite", "signup", mode="before")
    @classmethod
    def _lower(cls, value: Any) -> Any:
        return value.strip().lower() if isinstance(value, str) else value

    @field_validator(
        "secret",
        "store_url",
        "cookie_secure",
        "cookie_name",
        "metrics_token",
        "public_url",
        "smtp_url",
        "mail_from",
        "mail_templates",
        mode="before",
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
        return _checked_url(value)

    @field_validator("store_url")
    @classmethod
    def _store(cls, value: str | None) -> str | None:
        return None if value is None else _checked_url(value)

    @field_validator("public_url")
    @classmethod
    def _site_url(cls, value: str | None) -> str | None:
        if value is None:
            return None
        scheme, _, rest = value.partition("://")
        host = rest.rstrip("/")
        if scheme not in ("http", "https") or not host or any(c in host for c in "/?#@ "):
            raise ValueError("not a site URL: use https://host or https://host:port")
        return f"{scheme}://{host}"

    @field_validator("mail_from")
    @classmethod
    def _sender(cls, value: str | None) -> str | None:
        # Checked here, not as a finding: a From with a line break would inject headers.
        if value is not None:
            _, address = parseaddr(value)
            if "\r" in value or "\n" in value or "@" not in address:
                raise ValueError("not an address: write app@example.com or Name <app@example.com>")
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
    def site_url(self) -> str:
        """The URL mailed links start with: :attr:`public_url`, else ``make run``'s address.

        Production without ``SESSIONAUTH_PUBLIC_URL`` is a finding when anything mails links.
        """
        return self.public_url or "http://127.0.0.1:8000"

    @property
    def plaintext_smtp_auth_allowed(self) -> bool:
        """Whether SMTP credentials may travel without TLS (``starttls=false``): development."""
        return not self.production

    @property
    def file_mail_allowed(self) -> bool:
        """Whether mail without an SMTP URL goes to files in the data directory: development.

        Production sends no mail without ``SESSIONAUTH_SMTP_URL``.
        """
        return not self.production

    @property
    def mail_sender(self) -> str:
        """The ``From`` of account mail (``mail_from``, else ``sessionauth@localhost``)."""
        return self.mail_from or "sessionauth@localhost"

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
            short_absolute_timeout=self.short_absolute_timeout,
            touch_interval=touch,
        )


def unknown_variables(environ: Mapping[str, str] | None = None) -> list[tuple[str, str | None]]:
    """The ``SESSIONAUTH_*`` variables of ``environ`` (the process's) that are no setting.

    Each with the setting its name is closest to, if any (a typo: ``SESSIONAUTH_STORE_ULR``),
    which is otherwise ignored without a word and leaves its setting at the default.
    """
    known = [f"{_PREFIX}{name.upper()}" for name in Settings.model_fields]
    names = os.environ if environ is None else environ
    return [
        (name, next(iter(difflib.get_close_matches(name, known, n=1, cutoff=0.8)), None))
        for name in sorted(names)
        if name.upper().startswith(_PREFIX) and name.upper() not in known
    ]


def _checked_url(url: str) -> str:
    """Refuse a malformed database URL here, so that every command names it before any work.

    The backends check it again (:func:`~sessionauth.backends.url_checks.check_url`): the
    library is also used without these settings.
    """
    try:
        check_url(url)
    except ConfigurationError as exc:
        raise ValueError(str(exc)) from None
    return url


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
