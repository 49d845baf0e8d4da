"""Security events of second factors (see :mod:`sessionauth.auth.events` for the others).

::

    AuthEvent
    ├── FactorEnabled               kind: totp | passkey
    ├── FactorDisabled              kind: totp | passkey
    ├── FactorsReset                actor: the administrator (None: the CLI)
    ├── SecondFactorFailed          kind: totp | recovery | passkey (a wrong or replayed code)
    ├── RecoveryCodeUsed            remaining: codes left
    ├── RecoveryCodesRenewed        a new set replaced the old codes
    └── PasskeyCounterRegressed     a passkey's sign count did not grow: a cloned
                                    authenticator or a replayed assertion; refused

Like every event, none holds a secret, a code or a credential's public key.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from typing import ClassVar, Literal

from sessionauth.auth.events import AuthEvent
from sessionauth.auth.user_ids import UserId

__all__ = [
    "FactorDisabled",
    "FactorEnabled",
    "FactorKind",
    "FactorsReset",
    "PasskeyCounterRegressed",
    "RecoveryCodeUsed",
    "RecoveryCodesRenewed",
    "SecondFactorFailed",
]

FactorKind = Literal["totp", "passkey"]
"""The factors a user enrols."""


@dataclass(frozen=True, slots=True, kw_only=True)
class FactorEnabled(AuthEvent):
    """A user enabled a factor (the user's other sessions ended).

    Attributes:
        kind: Which factor.
    """

    name: ClassVar[str] = "factor_enabled"

    kind: FactorKind


@dataclass(frozen=True, slots=True, kw_only=True)
class FactorDisabled(AuthEvent):
    """A user disabled a factor (the user's other sessions ended).

    Attributes:
        kind: Which factor.
    """

    name: ClassVar[str] = "factor_disabled"
    level: ClassVar[int] = logging.WARNING

    kind: FactorKind


@dataclass(frozen=True, slots=True, kw_only=True)
class FactorsReset(AuthEvent):
    """An administrator removed every factor of a user (and ended the user's sessions).

    Attributes:
        actor: The administrator who asked (``None``: the CLI).
    """

    name: ClassVar[str] = "factors_reset"
    level: ClassVar[int] = logging.WARNING

    actor: UserId | None = None


@dataclass(frozen=True, slots=True, kw_only=True)
class SecondFactorFailed(AuthEvent):
    """A code or passkey assertion was refused (wrong, expired, replayed or malformed).

    Attributes:
        kind: What was tried.
    """

    name: ClassVar[str] = "second_factor_failed"
    level: ClassVar[int] = logging.WARNING

    kind: Literal["totp", "recovery", "passkey"]


@dataclass(frozen=True, slots=True, kw_only=True)
class RecoveryCodeUsed(AuthEvent):
    """A recovery code was consumed.

    Attributes:
        remaining: Unused codes left.
    """

    name: ClassVar[str] = "recovery_code_used"
    level: ClassVar[int] = logging.WARNING

    remaining: int


@dataclass(frozen=True, slots=True, kw_only=True)
class RecoveryCodesRenewed(AuthEvent):
    """A user replaced their recovery codes with a new set; the old ones no longer work."""

    name: ClassVar[str] = "recovery_codes_renewed"
    level: ClassVar[int] = logging.WARNING


@dataclass(frozen=True, slots=True, kw_only=True)
class PasskeyCounterRegressed(AuthEvent):
    """A passkey assertion whose sign count did not grow was refused.

    Attributes:
        stored: The count on record.
        received: The count the authenticator reported.
    """

    name: ClassVar[str] = "passkey_counter_regressed"
    level: ClassVar[int] = logging.ERROR

    stored: int
    received: int
