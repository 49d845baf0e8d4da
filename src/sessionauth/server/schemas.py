"""Request and response bodies of the JSON API, as Pydantic models.

Requests are strict and closed: a field of the wrong JSON type (``{"password": true}``) or an
unknown field is a 400, never coerced or ignored. Strings are bounded so a body cannot make the
server normalise or hash megabytes. Responses are typed so ``/openapi.json`` describes every
answer exactly.
"""

from __future__ import annotations

from typing import Annotated, Any, Literal, Self

from pydantic import BaseModel, ConfigDict, Field, StrictBool, StrictStr, model_validator

from sessionauth.auth.session_admin import SessionInfo
from sessionauth.stores.users import User

__all__ = [
    "AdminArea",
    "CSRFToken",
    "Dashboard",
    "EmailChangeBody",
    "ErrorBody",
    "ForgotBody",
    "Health",
    "LoginBody",
    "LoginResult",
    "MfaCodeBody",
    "MfaLoginBody",
    "MfaRequired",
    "NewUserBody",
    "PasswordBody",
    "RecoveryCodes",
    "ResetBody",
    "Revoked",
    "SessionList",
    "SessionOut",
    "SignupBody",
    "Success",
    "TokenBody",
    "TotpDisableBody",
    "TotpSetupResult",
    "TransferBody",
    "TransferResult",
    "UserDetail",
    "UserList",
    "UserPatchBody",
    "UserResult",
    "UserSummary",
]

# Generous bounds, checked before anything else looks at the value: the password policy and
# normalize_email apply their own, tighter limits afterwards.
Email = Annotated[StrictStr, Field(min_length=1, max_length=320)]
Password = Annotated[StrictStr, Field(max_length=4096)]
Role = Annotated[StrictStr, Field(pattern=r"^[a-z][a-z0-9_-]{0,63}$")]
# A mailed link's token is 43 characters; anything up to this bound is looked at (and refused
# as an invalid link, 400) rather than failing validation with a different message.
Token = Annotated[StrictStr, Field(max_length=256, description="The token of the mailed link.")]


class _Request(BaseModel):
    model_config = ConfigDict(extra="forbid", strict=True)


class ErrorBody(BaseModel):
    """Every error: ``{"error": "..."}``."""

    error: str


class LoginBody(_Request):
    """``POST /login``; ``remember`` ("keep me signed in") must be a JSON boolean."""

    email: Email
    password: Password
    remember: StrictBool = False


class PasswordBody(_Request):
    """``POST /password``."""

    current_password: Password
    new_password: Password


class SignupBody(_Request):
    """``POST /signup``."""

    email: Email
    password: Password


class TokenBody(_Request):
    """``POST /verify``: the token of a verification (or email change) link."""

    token: Token


class ForgotBody(_Request):
    """``POST /password/forgot``."""

    email: Email


class ResetBody(_Request):
    """``POST /password/reset``: the reset link's token and the new password."""

    token: Token
    password: Password


class EmailChangeBody(_Request):
    """``POST /email``: the new address, confirmed by the current password."""

    email: Email
    password: Password


MAX_TRANSFER = 10**15
"""The largest amount ``POST /api/transfer`` takes (a quadrillion: any sum in minor units)."""


class TransferBody(_Request):
    """``POST /api/transfer``: a positive, finite amount (an integer stays an integer).

    Bounded, and each type checked on its own: pydantic compares an ``int | float`` with
    ``allow_inf_nan`` as a float, and an integer beyond a float's range (10**309) raised
    ``OverflowError`` out of validation, a 500 instead of a 400.
    """

    amount: (
        Annotated[int, Field(gt=0, le=MAX_TRANSFER)]
        | Annotated[float, Field(gt=0, le=MAX_TRANSFER, allow_inf_nan=False)]
    )


class NewUserBody(_Request):
    """``POST /users`` (admin)."""

    email: Email
    password: Password
    role: Role = "user"


class UserPatchBody(_Request):
    """``PATCH /users/{id}`` (admin): the fields to change."""

    role: Role | None = None
    disabled: StrictBool | None = None


class UserSummary(BaseModel):
    """A user as the tutorial shows one."""

    # Built from the User dataclass by attribute (``model_validate(user)``): its other fields,
    # the password hash above all, are never copied.
    model_config = ConfigDict(from_attributes=True)

    id: int
    email: str
    role: str

    @classmethod
    def of(cls, user: User) -> Self:
        """Describe ``user``."""
        return cls.model_validate(user)


class UserDetail(UserSummary):
    """A user as administrators see one."""

    disabled: bool
    created_at: float
    # camelCase like the tutorial's fields; read from the account's ``email_verified``.
    emailVerified: bool = Field(  # noqa: N815
        validation_alias="email_verified",
        title="Email verified",
        description="Whether the owner confirmed the email address (accounts made by an "
        "administrator, and those older than this field, are verified).",
    )


class Success(BaseModel):
    """``{"success": true}``."""

    success: Literal[True] = True


class Revoked(Success):
    """``{"success": true, "revoked": n}``: how many sessions were ended."""

    revoked: int


class LoginResult(Success):
    """``POST /login`` succeeded; ``csrfToken`` is bound to the new session."""

    user: UserSummary
    csrfToken: str  # noqa: N815 - named like GET /csrf-token's field


class TransferResult(Success):
    """``POST /api/transfer`` succeeded."""

    amount: int | float


class CSRFToken(BaseModel):
    """``GET /csrf-token``."""

    csrfToken: str  # noqa: N815 - the tutorial's exact field name


class Dashboard(BaseModel):
    """``GET /dashboard``."""

    userId: int  # noqa: N815 - the tutorial's exact field name


class AdminArea(BaseModel):
    """``GET /admin``."""

    message: Literal["Admin area"] = "Admin area"


class SessionOut(BaseModel):
    """One live session of the user asking; times are POSIX seconds."""

    model_config = ConfigDict(from_attributes=True)

    handle: str
    created: float
    last_seen: float
    ip: str | None
    user_agent: str | None
    current: bool
    remembered: bool

    @classmethod
    def of(cls, info: SessionInfo) -> Self:
        """Describe one listed session."""
        return cls.model_validate(info)


class SessionList(BaseModel):
    """``GET /sessions``: a page, newest first; ``nextCursor`` fetches the next (``null``: last)."""

    sessions: list[SessionOut]
    nextCursor: str | None  # noqa: N815 - camelCase like the tutorial's fields


class UserList(BaseModel):
    """``GET /users`` (admin): one page of accounts, lowest id first."""

    users: list[UserDetail]
    nextCursor: str | None = Field(  # noqa: N815 - the JSON API's spelling
        default=None,
        description="Pass as `cursor` for the next page; null on the last page.",
    )


class UserResult(BaseModel):
    """``POST /users`` and ``PATCH /users/{id}`` (admin)."""

    user: UserDetail


class Health(BaseModel):
    """``GET /healthz``."""

    status: Literal["ok"] = "ok"


class Ready(BaseModel):
    """``GET /readyz`` when the stores serve reads: ``degraded`` if any condition is.

    Each check is ``{"status": "ok"|"degraded", "since": …, "reason"?: …, …details}``.
    """

    status: Literal["ok", "degraded"]
    checks: dict[str, dict[str, Any]]


# -- second factors -------------------------------------------------------------------------

# A TOTP code is 6 digits and a recovery code 10 characters (a dash and spaces allowed): the
# bound only keeps bodies small; the factor check judges the rest (401, or 400 while enrolling).
Code = Annotated[StrictStr, Field(min_length=1, max_length=64)]


class MfaRequired(BaseModel):
    """``POST /login``: the password was right, and the account needs a second factor.

    The session now holds the login (anonymous: it grants nothing) for ``POST /login/mfa``;
    ``csrfToken`` is the token for that session.
    """

    success: Literal[False] = False
    mfaRequired: Literal[True] = True  # noqa: N815 - the contract's name
    methods: list[str]
    csrfToken: str  # noqa: N815 - named like GET /csrf-token's field


class _OneCode(_Request):
    """Exactly one of a TOTP code and a recovery code (both or neither: a 400)."""

    code: Code | None = Field(default=None, description="A current code from the app.")
    recoveryCode: Code | None = Field(  # noqa: N815 - the contract's name
        default=None, description="An unused recovery code (it is consumed)."
    )

    @model_validator(mode="after")
    def _one_code(self) -> Self:
        if (self.code is None) == (self.recoveryCode is None):
            raise ValueError("send exactly one of code and recoveryCode")
        return self


class MfaLoginBody(_OneCode):
    """``POST /login/mfa``: exactly one of ``code`` (TOTP) and ``recoveryCode``."""


class TotpDisableBody(_OneCode):
    """``POST /mfa/totp/disable``: exactly one of ``code`` (TOTP) and ``recoveryCode``.

    A recovery code is for a user who lost their authenticator app.
    """


class MfaCodeBody(_Request):
    """``POST /mfa/totp/confirm``: a current TOTP code."""

    code: Code


class TotpSetupResult(BaseModel):
    """``POST /mfa/totp/setup``: the new secret, shown once (``otpauthUrl`` for a QR code)."""

    secret: str
    otpauthUrl: str  # noqa: N815 - the contract's name


class RecoveryCodes(Success):
    """``POST /mfa/totp/confirm`` and ``/mfa/recovery-codes``: the codes, shown only now."""

    recoveryCodes: list[str]  # noqa: N815 - the contract's name
