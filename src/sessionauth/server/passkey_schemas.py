"""Request and response bodies of the passkey routes (:mod:`sessionauth.server.passkey_api`).

Closed and strict like every request of :mod:`sessionauth.server.schemas`. A ``credential`` is
the browser's ``PublicKeyCredential`` in its JSON form (base64url fields, as
``PublicKeyCredential.toJSON()`` gives it); its inside is py_webauthn's to judge, so a
malformed one is refused by the ceremony (400 or 401), and the body limit bounds its size.
"""

from __future__ import annotations

import base64
import json
from typing import Annotated, Any, Self

from pydantic import BaseModel, ConfigDict, Field, StrictBool, StrictStr

from sessionauth.server.schemas import Success
from sessionauth.stores.factors import Passkey

__all__ = [
    "PasskeyList",
    "PasskeyLoginBody",
    "PasskeyOptions",
    "PasskeyOut",
    "PasskeyRegisterBody",
    "PasskeyRenameBody",
    "PasskeyResult",
    "b64url",
    "unb64url",
]

Name = Annotated[
    StrictStr,
    Field(max_length=256, description="Trimmed to 64 printable characters; empty: 'Passkey'."),
]
# A credential's JSON has six members; the bound keeps junk (and generated fuzz) small.
Credential = Annotated[
    dict[str, Any],
    Field(
        max_length=16,
        description="The PublicKeyCredential as JSON (id, rawId, type, response, ...).",
    ),
]


class _Request(BaseModel):
    model_config = ConfigDict(extra="forbid", strict=True)


def b64url(data: bytes) -> str:
    """Unpadded base64url, as WebAuthn's JSON and the routes' ``{credential_id}`` spell bytes."""
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def unb64url(text: str) -> bytes:
    """The bytes of unpadded base64url text.

    Raises:
        ValueError: For text that is not base64url (binascii.Error is one).
    """
    if len(text) % 4 == 1:
        raise ValueError("not base64url")
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


class PasskeyOptions(BaseModel):
    """Options for ``navigator.credentials.create()`` or ``.get()``: pass ``publicKey`` on.

    Byte fields (``challenge``, ``user.id``, credential ids) are base64url text: decode them
    to ArrayBuffers (or use ``PublicKeyCredential.parse*OptionsFromJSON``).
    """

    publicKey: dict[str, Any]  # noqa: N815 - WebAuthn's name

    @classmethod
    def from_json(cls, options: str) -> Self:
        """Wrap the options JSON py_webauthn made."""
        return cls(publicKey=json.loads(options))


class PasskeyRegisterBody(_Request):
    """``POST /passkeys/register``: the new credential and a name for it."""

    credential: Credential
    name: Name = ""


class PasskeyRenameBody(_Request):
    """``PATCH /passkeys/{credential_id}``."""

    name: Name


class PasskeyLoginBody(_Request):
    """``POST /passkeys/login``: the assertion; ``remember`` as in ``POST /login``."""

    credential: Credential
    remember: StrictBool = False


class PasskeyOut(BaseModel):
    """One passkey of the user asking; times are POSIX seconds (``lastUsed``: null if never)."""

    id: str = Field(description="The credential id, base64url: the {credential_id} of the routes.")
    name: str
    created: float
    lastUsed: float | None  # noqa: N815 - camelCase like the other fields
    backupEligible: bool  # noqa: N815
    backedUp: bool  # noqa: N815
    transports: list[str]

    @classmethod
    def of(cls, passkey: Passkey) -> Self:
        """Describe one stored passkey (never its public key or counter)."""
        return cls(
            id=b64url(passkey.credential_id),
            name=passkey.name,
            created=passkey.created,
            lastUsed=passkey.last_used,
            backupEligible=passkey.backup_eligible,
            backedUp=passkey.backed_up,
            transports=list(passkey.transports),
        )


class PasskeyList(BaseModel):
    """``GET /passkeys``: the user's passkeys, oldest first."""

    passkeys: list[PasskeyOut]


class PasskeyResult(Success):
    """A passkey registered or renamed."""

    passkey: PasskeyOut
