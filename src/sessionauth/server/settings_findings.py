"""Everything unsafe about a configuration, each with its fix; production refuses to start on any.

:func:`findings` lists them for any environment (``sessionauth check`` prints them all);
:func:`enforce` refuses to start when the settings are
:attr:`~sessionauth.server.settings.Settings.strict` (production) and logs them otherwise.
A SQLite database file that other users may read or write is a finding too, but only a logged
warning at start-up, in production as well: the file is the operator's, and a start refused
by an upgrade over a mode the file always had would be an outage, not a fix. So is a
``SESSIONAUTH_*`` variable that is no setting (a typo leaves the setting at its default; a
variable of the operator's own must not stop a start).
"""

from __future__ import annotations

import ipaddress
import logging
import stat
from pathlib import Path

from sessionauth.auth.client_address import trusted_networks
from sessionauth.backends.sqlite.files import database_path
from sessionauth.errors import ConfigurationError
from sessionauth.mail.smtp import parse_smtp_url
from sessionauth.origins import validate_origins
from sessionauth.server.secret_key import GENERATE, SECRET_FILE, secret_keys
from sessionauth.server.settings import Settings, unknown_variables
from sessionauth.tokens import MIN_KEY_BYTES

__all__ = ["MIN_METRICS_TOKEN_BYTES", "enforce", "findings"]

logger = logging.getLogger("sessionauth.server")

MIN_METRICS_TOKEN_BYTES = 16
"""A shorter ``SESSIONAUTH_METRICS_TOKEN`` is a finding: easy to guess."""


def _secret_findings(settings: Settings) -> list[str]:
    keys = secret_keys(settings)
    out = []
    if settings.secret is not None and not keys:
        out.append(f"SESSIONAUTH_SECRET holds no key: {GENERATE} and set it")
    elif not keys and not settings.generates_secret:
        out.append(
            "SESSIONAUTH_SECRET is not set: production needs a fixed, strong secret key; "
            f"{GENERATE} and set SESSIONAUTH_SECRET"
        )
    for index, key in enumerate(keys, start=1):
        if len(key.encode()) < MIN_KEY_BYTES:
            out.append(
                f"SESSIONAUTH_SECRET key #{index} is weak (shorter than {MIN_KEY_BYTES} bytes): "
                f"{GENERATE} and use it instead"
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


def _database_file_findings(settings: Settings) -> list[str]:
    """Each SQLite database file (or its -wal, -shm) that group or others may read or write.

    It holds password hashes, emails, sealed TOTP secrets and sessions' addresses. sessionauth
    creates it 0600; one made otherwise (by the operator, or an older release) is left as it is
    and reported here, as the generated secret is.
    """
    out = []
    for url in dict.fromkeys((settings.database_url, settings.session_store_url)):
        if not url.lower().startswith("sqlite:"):
            continue
        try:
            path = database_path(url)
        except ConfigurationError:
            continue  # refused when the store is opened, with its own message
        if path == ":memory:":
            continue
        exposed = []
        for name in (path, f"{path}-wal", f"{path}-shm"):
            try:
                mode = Path(name).stat().st_mode
            except OSError:
                continue  # not there (yet): created 0600, or with the database's mode
            if mode & (stat.S_IRWXG | stat.S_IRWXO):
                exposed.append(name)
        if exposed:
            out.append(
                f"the SQLite database {path} is readable or writable by others (it holds "
                f"password hashes and sessions): chmod 600 {' '.join(exposed)}"
            )
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


def _signup_findings(settings: Settings) -> list[str]:
    out = []
    if settings.signup == "open" and "user" not in settings.roles:
        out.append(
            "SESSIONAUTH_SIGNUP is open but SESSIONAUTH_ROLES has no 'user' role, the role "
            "sign-ups get: add it, or set SESSIONAUTH_SIGNUP=off"
        )
    mails = settings.signup == "open" or settings.smtp_url is not None
    if settings.production and settings.public_url is None and mails:
        out.append(
            "SESSIONAUTH_PUBLIC_URL is not set: mailed links (verification, password reset) "
            "would point at http://127.0.0.1:8000; set it to the site's https:// URL"
        )
    elif settings.production and not settings.site_url.startswith("https://") and mails:
        out.append(
            "SESSIONAUTH_PUBLIC_URL is not https: mailed links would send tokens over plain "
            "HTTP; use the site's https:// URL"
        )
    return out


def _mail_findings(settings: Settings) -> list[str]:
    if settings.smtp_url is None:
        return []
    try:
        smtp = parse_smtp_url(settings.smtp_url.get_secret_value())
    except ConfigurationError as exc:
        return [f"SESSIONAUTH_SMTP_URL: {exc}"]
    out = []
    if smtp.tls == "none" and smtp.username:
        out.append(
            "SESSIONAUTH_SMTP_URL sends its password without TLS (starttls=false): use "
            "smtps://… or smtp://… with STARTTLS"
        )
    if settings.mail_from is None:
        out.append(
            "SESSIONAUTH_MAIL_FROM is not set: mail would come from sessionauth@localhost, "
            "which receiving servers reject; set it to an address of your domain"
        )
    return out


def findings(settings: Settings) -> list[str]:
    """Return every unsafe or inconsistent thing about ``settings``, each naming its fix.

    Production must have none (see :func:`enforce`); ``sessionauth check`` prints them all for
    any environment.
    """
    return _setting_findings(settings) + _database_file_findings(settings) + _unknown_findings()


def _unknown_findings() -> list[str]:
    """Each ``SESSIONAUTH_*`` variable that is no setting: ignored, so probably a typo."""
    return [
        f"{name} is not a setting and is ignored"
        + (f": did you mean {closest}?" if closest else "")
        for name, closest in unknown_variables()
    ]


def _setting_findings(settings: Settings) -> list[str]:
    """The findings about the settings themselves: production refuses to start on any."""
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
    out.extend(_signup_findings(settings))
    out.extend(_mail_findings(settings))
    token = settings.metrics_token
    if token is not None and len(token.get_secret_value().encode()) < MIN_METRICS_TOKEN_BYTES:
        out.append(
            f"SESSIONAUTH_METRICS_TOKEN is shorter than {MIN_METRICS_TOKEN_BYTES} bytes: easy to "
            f"guess; {GENERATE}"
        )
    try:
        settings.policy()
    except ConfigurationError as exc:
        out.append(
            "SESSIONAUTH_IDLE_TIMEOUT / SESSIONAUTH_ABSOLUTE_TIMEOUT / "
            f"SESSIONAUTH_SHORT_ABSOLUTE_TIMEOUT: {exc}"
        )
    return out


def enforce(settings: Settings) -> None:
    """Refuse a production configuration with findings; log them in development.

    A database file open to other users is logged as a warning in production too, not refused
    (see the module's docstring).

    Raises:
        ConfigurationError: In production, listing every finding about the settings.
    """
    found = _setting_findings(settings)
    if found and settings.strict:
        raise ConfigurationError(
            "refusing to start in production:\n" + "\n".join(f"- {item}" for item in found)
        )
    for item in found + _database_file_findings(settings) + _unknown_findings():
        logger.warning("configuration: %s", item)
