"""The secret key of ``SESSIONAUTH_SECRET``, or development's generated one.

:func:`load_keyring` turns ``SESSIONAUTH_SECRET`` into a :class:`~sessionauth.tokens.Keyring`;
in development (:attr:`~sessionauth.server.settings.Settings.generates_secret`), when it is
unset, a key is generated once into the data directory (``SESSIONAUTH_DATA_DIR``, file mode
0600) so sessions survive restarts and every worker agrees on the key.
"""

from __future__ import annotations

import logging
import os
import secrets
from pathlib import Path

from sessionauth.errors import ConfigurationError
from sessionauth.server.settings import Settings
from sessionauth.tokens import MIN_KEY_BYTES, Keyring

__all__ = [
    "GENERATE",
    "SECRET_FILE",
    "existing_keyring",
    "load_keyring",
    "new_secret",
    "secret_keys",
]

logger = logging.getLogger("sessionauth.server")

SECRET_FILE = "secret"  # noqa: S105 - a file name, not a password
"""In the data directory: development's generated secret key."""

GENERATE = "generate one with `sessionauth secret`"
"""How every message about a missing or weak secret says to fix it."""


def new_secret() -> str:
    """Return a fresh secret key: 48 random bytes as URL-safe text (64 characters)."""
    return secrets.token_urlsafe(48)


def secret_keys(settings: Settings) -> list[str]:
    """The keys of ``SESSIONAUTH_SECRET``, newest first (none when it is unset or blank)."""
    if settings.secret is None:
        return []
    return [k.strip() for k in settings.secret.get_secret_value().split(",") if k.strip()]


def load_keyring(settings: Settings) -> Keyring:
    """Return the keyring of ``SESSIONAUTH_SECRET``, or development's generated one.

    In development without a secret, the key lives in ``<data_dir>/secret``: created once,
    atomically (several workers starting together all end up with the same key), mode 0600.

    Raises:
        ConfigurationError: If a key is weak, or production has no secret.
    """
    keys = secret_keys(settings)
    if keys:
        try:
            return Keyring(keys)
        except ConfigurationError as exc:
            raise ConfigurationError(f"SESSIONAUTH_SECRET: {exc}") from None
    if not settings.generates_secret:
        raise ConfigurationError(f"SESSIONAUTH_SECRET is not set: {GENERATE} and set it")
    return Keyring([_development_secret(settings.data_dir)])


def existing_keyring(settings: Settings) -> Keyring | None:
    """Return the keyring :func:`load_keyring` would, but never generate development's key.

    For ``sessionauth check``, which must change nothing. ``None`` when there is no usable key
    to read: a missing or weak ``SESSIONAUTH_SECRET`` (reported by the settings findings), or
    development before a server generated its key.

    Raises:
        OSError: If the generated key's file exists but cannot be read.
    """
    keys = secret_keys(settings)
    try:
        if keys:
            return Keyring(keys)
        if settings.generates_secret:
            return Keyring([_read_secret(settings.data_dir / SECRET_FILE)])
    except (ConfigurationError, FileNotFoundError, NotADirectoryError):
        pass
    return None


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
