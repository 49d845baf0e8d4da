"""The user record and the checks on what goes into it: addresses, roles, ids.

:class:`User` (one account) and :class:`UserPage` (a page of them) are what a
:class:`~sessionauth.stores.users.UserStore` returns; :func:`normalize_email`, :func:`check_role`
and :func:`valid_id` decide what it accepts. They are apart from the store's contract because
they are plain values and pure functions, needed without any store (the sign-up and login
flows normalise an address before asking for it; pages render a ``User``), while the store
module is the abstract protocol every backend implements. Everything here is also importable
from :mod:`sessionauth.stores.users`.
"""

from __future__ import annotations

import builtins
import unicodedata
from dataclasses import dataclass, field
from typing import Final

from sessionauth.addr_spec import MAX_EMAIL_LENGTH, addr_spec_problem
from sessionauth.errors import InvalidEmail

__all__ = [
    "MAX_ID",
    "User",
    "UserPage",
    "check_role",
    "fold_email",
    "normalize_email",
    "valid_id",
]

# Control, format (zero-width and bidi overrides, which make look-alike addresses), surrogate,
# and line/paragraph separator characters have no business in an address; CR and LF in
# particular turn into header injection wherever the address reaches an email.
_FORBIDDEN_CATEGORIES: Final = frozenset({"Cc", "Cf", "Cs", "Zl", "Zp"})
_MAX_ROLE_LENGTH: Final = 64
MAX_ID: Final = 2**63 - 1
"""The largest id both databases can hold (signed 64-bit); anything beyond names no user."""


@dataclass(frozen=True, kw_only=True, slots=True)
class User:
    """One account, as stored.

    Attributes:
        id: Database-assigned, never reused.
        email: The normalised address (see :func:`normalize_email`).
        role: Free-form role name, for example ``"user"`` or ``"admin"``.
        password_hash: An argon2 or legacy bcrypt hash; left out of ``repr`` so it never lands
            in a log line or a traceback.
        disabled: A disabled account cannot log in.
        created_at: POSIX seconds, from the store's clock.
        email_verified: Whether the owner of ``email`` confirmed it (accounts made by an
            administrator, and those older than this field, count as verified).
    """

    id: int
    email: str
    role: str
    password_hash: str = field(repr=False)
    disabled: bool
    created_at: float
    email_verified: bool = True


@dataclass(frozen=True, slots=True)
class UserPage:
    """One page of accounts, lowest id first (see :meth:`UserStore.page`).

    Attributes:
        users: At most the page's ``limit`` accounts.
        next_after: The ``after`` that asks for the next page; ``None`` on the last page.
        previous_before: The ``before`` that asks for the previous page; ``None`` on the first.
    """

    users: builtins.list[User]
    next_after: int | None
    previous_before: int | None = None


def fold_email(text: str) -> str:
    """The form emails are stored in (see :func:`normalize_email`), without its validation.

    A search for part of an address folds the part this way to match the stored form.
    """
    return unicodedata.normalize("NFKC", unicodedata.normalize("NFKC", text).strip().casefold())


def normalize_email(email: str) -> str:
    """Return the canonical form of an address: NFKC, stripped, case-folded.

    Case-folding the whole address (local part included) deviates from RFC 5321 on purpose: no
    mainstream provider distinguishes ``Bob@`` from ``bob@``, and treating them as two accounts
    invites impersonation.

    Raises:
        InvalidEmail: If the address has control or invisible characters, is longer than 254
            characters, or is not one plain ``local@domain`` (see
            :func:`sessionauth.addr_spec.addr_spec_problem`): a list, a display name, a comment
            or a quoted local part would let mail go somewhere the stored address does not say.
    """
    # Bound the normalisation work before doing it (NFKC cannot shrink text fourfold).
    if len(email) > MAX_EMAIL_LENGTH * 4:
        raise InvalidEmail(f"email address longer than {MAX_EMAIL_LENGTH} characters")
    # Normalise again after casefold(): folding can produce text NFKC would change (for example
    # U+0130), and the result must be a fixed point, or one address could become two rows.
    normalized = fold_email(email)
    if any(unicodedata.category(char) in _FORBIDDEN_CATEGORIES for char in normalized):
        raise InvalidEmail("email address contains control or invisible characters")
    if len(normalized) > MAX_EMAIL_LENGTH:
        raise InvalidEmail(f"email address longer than {MAX_EMAIL_LENGTH} characters")
    problem = addr_spec_problem(normalized)
    if problem is not None:
        raise InvalidEmail(problem)
    return normalized


def check_role(role: str) -> str:
    """Return ``role`` if it can name a role.

    Raises:
        ValueError: If it is empty, longer than 64 characters, padded or unprintable.
    """
    if not role or len(role) > _MAX_ROLE_LENGTH or not role.isprintable() or role != role.strip():
        raise ValueError(f"a role is 1 to {_MAX_ROLE_LENGTH} printable characters, unpadded")
    return role


def valid_id(user_id: int) -> bool:
    """Whether ``user_id`` is an id the databases can hold (1 to :data:`MAX_ID`)."""
    # Out-of-range ids would make the drivers raise OverflowError; they simply match no one.
    return 1 <= user_id <= MAX_ID
