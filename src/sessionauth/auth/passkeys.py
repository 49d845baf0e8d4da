"""Passkeys (WebAuthn) over py_webauthn: registration and discoverable sign-in.

Every ceremony requires user verification (a PIN or biometric on the authenticator), and
registration requires a discoverable credential (a resident key), so that a passkey alone
signs in: one gesture proves possession and the user, which is why a passkey login counts as
both factors. No attestation is asked for (``none``): the server trusts the user's choice of
authenticator, as passkey providers expect.

The user handle stored in each credential is the user's id as ASCII digits: the assertion of
a discoverable credential names the account by it, so sign-in looks the passkey up by (user,
credential id) without any global index. It carries no personal data.

Challenges (:class:`ChallengeKeeper`) are single-use twice over. A registration's (32 random
bytes) is kept for a few minutes in the signed-in session that asked for it and removed by the
verification. A sign-in's is *stateless*: the options of a sign-in are anonymous, and keeping
their challenge in a session would store a record per asker (anyone could grow the store for a
day with cookieless calls), so it is 16 random bytes, its expiry, and a MAC of both under the
keyring; the verification reads it back from the assertion's ``clientDataJSON``, checks MAC and
expiry, then signs it against the stored key. Either challenge is then claimed in the attempt
counter with a limit of one, an atomic step on every backend, so even two concurrent requests
carrying one assertion cannot both pass.
Sign counts go through the store's compare-and-set
(:meth:`~sessionauth.stores.factors.FactorStore.use_passkey`); a counter that does not grow is
refused and published as :class:`~sessionauth.auth.factor_events.PasskeyCounterRegressed`.
Needs the ``mfa`` extra.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import secrets
from dataclasses import dataclass
from typing import Any, Literal

try:
    import webauthn
    from webauthn.helpers import exceptions as wx
    from webauthn.helpers.structs import (
        AuthenticatorSelectionCriteria,
        CredentialDeviceType,
        PublicKeyCredentialDescriptor,
        ResidentKeyRequirement,
        UserVerificationRequirement,
    )
except ImportError as exc:
    raise ImportError(
        f"passkeys need the 'mfa' extra: pip install 'sessionauth[mfa]' ({exc})"
    ) from exc

from sessionauth.auth.event_hub import EventHub
from sessionauth.auth.factor_events import PasskeyCounterRegressed
from sessionauth.errors import InvalidCode, PasskeyRejected
from sessionauth.policy import Clock, system_clock
from sessionauth.session import Session
from sessionauth.stores.attempts import AttemptCounter
from sessionauth.stores.factors import FactorStore, Passkey, PasskeyUse
from sessionauth.tokens import Keyring

__all__ = ["CHALLENGE_TTL", "ChallengeKeeper", "Passkeys", "RelyingParty"]

CHALLENGE_TTL = 300.0
"""Seconds a ceremony's challenge stays valid (WebAuthn's recommended timeout is 5 min)."""

_SESSION_KEY = "_webauthn"
_SIGNED_PURPOSE = "webauthn-challenge"
_NONCE, _EXPIRY, _MAC = 16, 8, 16
_MAX_NAME = 64
Purpose = Literal["register", "login"]


@dataclass(frozen=True, slots=True)
class RelyingParty:
    """The site passkeys are bound to.

    Attributes:
        id: The RP ID: the site's registrable domain (``example.com``), without scheme.
        name: What the authenticator shows while registering.
        origins: The exact origins ceremonies may come from (``https://example.com``).
    """

    id: str
    name: str
    origins: tuple[str, ...]


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def _unb64(text: str) -> bytes:
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


class ChallengeKeeper:
    """Issues ceremony challenges and takes each back once (see the module).

    Args:
        counter: The attempt counter of the session store's backend (its atomic
            reserve-with-limit-one marks a challenge used).
        keyring: Signs the stateless challenges of sign-ins (a key of their own is derived).
        clock: The time source of expiry.
        ttl: Seconds a challenge stays valid.
    """

    def __init__(
        self,
        counter: AttemptCounter,
        keyring: Keyring,
        *,
        clock: Clock = system_clock,
        ttl: float = CHALLENGE_TTL,
    ):
        self._counter = counter
        self._keys = keyring.derived_keys(_SIGNED_PURPOSE)
        self._clock = clock
        self._ttl = ttl

    def issue(self, session: Session, purpose: Purpose) -> bytes:
        """Return a fresh challenge for ``purpose``, kept in ``session`` (replacing any)."""
        challenge = secrets.token_bytes(32)
        session[_SESSION_KEY] = {
            "purpose": purpose,
            "challenge": _b64(challenge),
            "expires": self._clock() + self._ttl,
        }
        return challenge

    async def take(self, session: Session, purpose: Purpose) -> bytes:
        """Remove and return the session's challenge for ``purpose``, usable this once.

        Raises:
            InvalidCode: If there is none, it is for another purpose, expired, or was taken
                already (also by a concurrent request).
        """
        kept = session.pop(_SESSION_KEY, None)
        if (
            not isinstance(kept, dict)
            or kept.get("purpose") != purpose
            or not isinstance(kept.get("challenge"), str)
            or not isinstance(kept.get("expires"), int | float)
            or kept["expires"] <= self._clock()
        ):
            raise InvalidCode("Invalid passkey")
        challenge = _unb64(kept["challenge"])
        await self._claim(challenge)
        return challenge

    def issue_signed(self) -> bytes:
        """Return a fresh sign-in challenge that nothing stores: nonce, expiry and their MAC."""
        body = secrets.token_bytes(_NONCE) + int(self._clock() + self._ttl).to_bytes(_EXPIRY, "big")
        return body + _mac(self._keys[0], body)

    async def take_signed(self, challenge: bytes) -> bytes:
        """Check a sign-in challenge read back from an assertion and claim it, this once.

        Raises:
            InvalidCode: If it is not one of :meth:`issue_signed`'s (under any key of the
                keyring), expired, or was taken already (also by a concurrent request).
        """
        body, mac = challenge[: _NONCE + _EXPIRY], challenge[_NONCE + _EXPIRY :]
        if (
            len(challenge) != _NONCE + _EXPIRY + _MAC
            or not any(hmac.compare_digest(mac, _mac(key, body)) for key in self._keys)
            or int.from_bytes(body[_NONCE:], "big") <= self._clock()
        ):
            raise InvalidCode("Invalid passkey")
        await self._claim(challenge)
        return challenge

    async def _claim(self, challenge: bytes) -> None:
        """Mark ``challenge`` used in the counter; :class:`InvalidCode` if it was already."""
        key = "webauthn:" + hashlib.sha256(challenge).hexdigest()
        granted, _, _ = await self._counter.reserve(key, self._ttl, 1)
        if not granted:
            raise InvalidCode("Invalid passkey")


class Passkeys:
    """Registration, renaming and discoverable sign-in with passkeys.

    List them with ``store.list_passkeys``; add and delete them through the Authenticator
    (:class:`~sessionauth.auth.factor_admin.FactorAdministration`), which moves the epoch.

    Args:
        store: Where passkeys live.
        rp: The relying party (this site).
        challenges: Keeps the ceremonies' challenges.
        clock: The time source (``created`` and ``last_used``).
        events: Where a regressed counter is published (and logged).
    """

    def __init__(
        self,
        *,
        store: FactorStore,
        rp: RelyingParty,
        challenges: ChallengeKeeper,
        clock: Clock = system_clock,
        events: EventHub | None = None,
    ):
        self.store = store
        self._rp = rp
        self._challenges = challenges
        self._clock = clock
        self._events = events if events is not None else EventHub()

    async def rename(self, user_id: str, credential_id: bytes, name: str) -> bool:
        """Rename one passkey of the user (trimmed, at most 64 characters); False if none."""
        return await self.store.rename_passkey(user_id, credential_id, _name(name))

    async def registration_options(
        self, session: Session, *, user_id: str, user_name: str, display_name: str = ""
    ) -> str:
        """Return the ``PublicKeyCredentialCreationOptions`` JSON for the browser.

        A discoverable credential with user verification is required; the user's existing
        passkeys are excluded, so one authenticator is not registered twice.
        """
        existing = await self.store.list_passkeys(user_id)
        options = webauthn.generate_registration_options(
            rp_id=self._rp.id,
            rp_name=self._rp.name,
            user_id=user_id.encode(),
            user_name=user_name,
            user_display_name=display_name or user_name,
            challenge=self._challenges.issue(session, "register"),
            timeout=int(CHALLENGE_TTL * 1000),
            authenticator_selection=AuthenticatorSelectionCriteria(
                resident_key=ResidentKeyRequirement.REQUIRED,
                require_resident_key=True,
                user_verification=UserVerificationRequirement.REQUIRED,
            ),
            exclude_credentials=[
                PublicKeyCredentialDescriptor(id=key.credential_id) for key in existing
            ],
        )
        return webauthn.options_to_json(options)

    async def register(
        self, session: Session, *, user_id: str, credential: str | dict[str, Any], name: str
    ) -> Passkey:
        """Verify the browser's registration response and store the new passkey.

        Raises:
            InvalidCode: Without a current registration challenge in the session.
            PasskeyRejected: If the response fails verification (origin, RP ID, challenge,
                user verification, signature) or the passkey is registered already.
        """
        challenge = await self._challenges.take(session, "register")
        try:
            verified = webauthn.verify_registration_response(
                credential=credential,
                expected_challenge=challenge,
                expected_rp_id=self._rp.id,
                expected_origin=list(self._rp.origins),
                require_user_verification=True,
            )
        except (wx.WebAuthnException, ValueError, KeyError, TypeError, RecursionError) as exc:
            raise PasskeyRejected(f"the passkey could not be verified: {exc}") from None
        passkey = Passkey(
            credential_id=verified.credential_id,
            public_key=verified.credential_public_key,
            sign_count=verified.sign_count,
            backup_eligible=verified.credential_device_type is CredentialDeviceType.MULTI_DEVICE,
            backed_up=verified.credential_backed_up,
            transports=_transports(credential),
            name=_name(name),
            created=self._clock(),
        )
        if not await self.store.add_passkey(user_id, passkey):
            raise PasskeyRejected("this passkey is registered already")
        return passkey

    def claimed_user(self, credential: str | dict[str, Any]) -> str | None:
        """The user id an assertion's user handle names, unverified; ``None`` if malformed.

        A sign-in reads that account's principal *before* :meth:`authenticate` verifies the
        assertion (see :mod:`sessionauth.auth.passkey_login`).
        """
        try:
            user_id, _ = _identify(credential)
        except InvalidCode:
            return None
        return user_id or None

    def authentication_options(self) -> str:
        """Return the ``PublicKeyCredentialRequestOptions`` JSON of a discoverable sign-in.

        Its challenge is stateless (see the module): asking stores nothing.
        """
        options = webauthn.generate_authentication_options(
            rp_id=self._rp.id,
            challenge=self._challenges.issue_signed(),
            timeout=int(CHALLENGE_TTL * 1000),
            user_verification=UserVerificationRequirement.REQUIRED,
        )
        return webauthn.options_to_json(options)

    async def authenticate(self, credential: str | dict[str, Any]) -> tuple[str, Passkey]:
        """Verify a sign-in assertion; return the user id and the passkey, as now stored.

        Raises:
            InvalidCode: For any failure (no challenge, unknown passkey, bad signature, no
                user verification, a counter that did not grow), indistinguishably.
        """
        challenge = await self._challenges.take_signed(_client_challenge(credential))
        user_id, credential_id = _identify(credential)
        stored = await self.store.get_passkey(user_id, credential_id) if user_id else None
        if stored is None:
            raise InvalidCode("Invalid passkey")
        try:
            verified = webauthn.verify_authentication_response(
                credential=credential,
                expected_challenge=challenge,
                expected_rp_id=self._rp.id,
                expected_origin=list(self._rp.origins),
                credential_public_key=stored.public_key,
                credential_current_sign_count=0,  # the store's compare-and-set decides
                require_user_verification=True,
            )
        except (wx.WebAuthnException, ValueError, KeyError, TypeError, RecursionError):
            raise InvalidCode("Invalid passkey") from None
        now = self._clock()
        used = await self.store.use_passkey(
            user_id,
            credential_id,
            sign_count=verified.new_sign_count,
            backed_up=verified.credential_backed_up,
            now=now,
        )
        if used is PasskeyUse.COUNTER_REGRESSED:
            await self._events.publish(
                PasskeyCounterRegressed(
                    user_id=int(user_id),
                    stored=stored.sign_count,
                    received=verified.new_sign_count,
                )
            )
        if used is not PasskeyUse.ACCEPTED:
            raise InvalidCode("Invalid passkey")
        return user_id, Passkey(
            credential_id=stored.credential_id,
            public_key=stored.public_key,
            sign_count=verified.new_sign_count,
            backup_eligible=stored.backup_eligible,
            backed_up=verified.credential_backed_up,
            transports=stored.transports,
            name=stored.name,
            created=stored.created,
            last_used=now,
        )


def _name(name: str) -> str:
    """A passkey's name as stored: trimmed, printable, bounded, never empty."""
    cleaned = "".join(char for char in name if char.isprintable()).strip()
    return cleaned[:_MAX_NAME] or "Passkey"


def _fields(credential: str | dict[str, Any]) -> dict[str, Any]:
    # json.loads of a body nested thousands deep raises RecursionError: every caller catches
    # it with the malformed-input errors, so it is an invalid passkey, never a 500.
    parsed = json.loads(credential) if isinstance(credential, str) else credential
    if not isinstance(parsed, dict):
        raise InvalidCode("Invalid passkey")
    return parsed


def _mac(key: bytes, body: bytes) -> bytes:
    return hmac.new(key, body, hashlib.sha256).digest()[:_MAC]


def _client_challenge(credential: str | dict[str, Any]) -> bytes:
    """The challenge an assertion's ``clientDataJSON`` says it signed (not yet verified)."""
    try:
        client_data = json.loads(_unb64(_fields(credential)["response"]["clientDataJSON"]))
        return _unb64(client_data["challenge"])
    except (ValueError, KeyError, TypeError, AttributeError, RecursionError):
        raise InvalidCode("Invalid passkey") from None


def _identify(credential: str | dict[str, Any]) -> tuple[str, bytes]:
    """The user id (from the user handle) and credential id an assertion names."""
    try:
        fields = _fields(credential)
        handle = _unb64(fields["response"]["userHandle"]).decode("ascii")
        credential_id = _unb64(fields["rawId"])
    except (ValueError, KeyError, TypeError, AttributeError, UnicodeDecodeError, RecursionError):
        raise InvalidCode("Invalid passkey") from None
    return (handle if handle.isdigit() and handle.isascii() else ""), credential_id


def _transports(credential: str | dict[str, Any]) -> tuple[str, ...]:
    try:
        found = _fields(credential)["response"].get("transports") or []
    except (ValueError, KeyError, TypeError, AttributeError, InvalidCode, RecursionError):
        return ()
    if not isinstance(found, list):  # the browser's is a list; anything else says nothing
        return ()
    return tuple(str(t)[:16] for t in found if isinstance(t, str))[:8]
