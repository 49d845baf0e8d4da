"""Passkeys through py_webauthn, driven by a software authenticator (tests/support/webauthn.py).

Real P-256 credentials and real attestation and assertion responses (``none`` attestation), so
every check of py_webauthn and of our wrapper runs: RP ID hash, origin, challenge, user
verification, signature, sign counter.
"""

from __future__ import annotations

import asyncio
import json
import os

import pytest

from sessionauth.auth.event_hub import EventHub
from sessionauth.auth.events import AuthEvent
from sessionauth.auth.factor_events import PasskeyCounterRegressed
from sessionauth.auth.passkeys import CHALLENGE_TTL, ChallengeKeeper, Passkeys, RelyingParty
from sessionauth.errors import InvalidCode, PasskeyRejected
from sessionauth.session import Session
from sessionauth.stores.memory import MemoryCounter
from sessionauth.stores.memory_factors import MemoryFactorStore
from sessionauth.tokens import Keyring
from tests.support.clock import FakeClock
from tests.support.webauthn import SoftAuthenticator, b64, unb64

RP = RelyingParty(id="example.com", name="Example", origins=("https://example.com",))
USER = "42"

KEYRING = Keyring(["passkey-test-" + "k" * 40])


class Env:
    """The passkeys helper over memory stores, with a fake clock and the events it published."""

    def __init__(self) -> None:
        self.clock = FakeClock(1_700_000_000.0)
        self.store = MemoryFactorStore()
        self.events: list[AuthEvent] = []
        hub = EventHub()
        hub.subscribe(AuthEvent, self.events.append)
        self.passkeys = Passkeys(
            store=self.store,
            rp=RP,
            challenges=ChallengeKeeper(MemoryCounter(self.clock), KEYRING, clock=self.clock),
            clock=self.clock,
            events=hub,
        )

    async def register(self, device: SoftAuthenticator, name: str = "Laptop") -> None:
        session = Session()
        options = await self.passkeys.registration_options(
            session, user_id=USER, user_name="ana@example.com"
        )
        await self.passkeys.register(
            session, user_id=USER, credential=device.create(options), name=name
        )

    async def sign_in(self, device: SoftAuthenticator) -> str:
        options = self.passkeys.authentication_options()
        user_id, _ = await self.passkeys.authenticate(json.dumps(device.get(options)))
        return user_id


@pytest.fixture
def env() -> Env:
    return Env()


async def test_register_then_sign_in_with_a_discoverable_passkey(env: Env) -> None:
    """A registered passkey signs in alone: the user handle names the user; state is stored."""
    device = SoftAuthenticator()
    await env.register(device, name="  My laptop  ")
    env.clock.advance(60)
    assert await env.sign_in(device) == USER
    (stored,) = await env.store.list_passkeys(USER)
    assert stored.credential_id == device.credential_id
    assert (stored.sign_count, stored.backup_eligible, stored.backed_up) == (1, True, True)
    assert stored.transports == ("internal", "hybrid")
    assert stored.name == "My laptop"
    assert stored.created == env.clock() - 60
    assert stored.last_used == env.clock()


async def test_options_require_a_resident_key_and_user_verification(env: Env) -> None:
    """Registration asks for a discoverable credential with UV and excludes known ones."""
    device = SoftAuthenticator()
    await env.register(device)
    options = json.loads(
        await env.passkeys.registration_options(Session(), user_id=USER, user_name="ana")
    )
    selection = options["authenticatorSelection"]
    assert selection["residentKey"] == "required"
    assert selection["userVerification"] == "required"
    assert [c["id"] for c in options["excludeCredentials"]] == [b64(device.credential_id)]
    assert unb64(options["user"]["id"]) == USER.encode()
    login = json.loads(env.passkeys.authentication_options())
    assert login["userVerification"] == "required"
    assert login.get("allowCredentials", []) == []


async def test_registration_without_user_verification_is_rejected(env: Env) -> None:
    """An authenticator that did not verify the user cannot register a passkey."""
    with pytest.raises(PasskeyRejected):
        await env.register(SoftAuthenticator(verifies_user=False))
    assert await env.store.list_passkeys(USER) == []


async def test_registration_from_another_origin_is_rejected(env: Env) -> None:
    """A response made for another origin (a phishing site) is refused."""
    session = Session()
    options = await env.passkeys.registration_options(session, user_id=USER, user_name="ana")
    credential = SoftAuthenticator().create(options, origin="https://evil.example")
    with pytest.raises(PasskeyRejected):
        await env.passkeys.register(session, user_id=USER, credential=credential, name="x")


async def test_sign_in_without_user_verification_is_refused(env: Env) -> None:
    """An assertion without the UV flag does not sign in (a passkey must be both factors)."""
    device = SoftAuthenticator()
    await env.register(device)
    device.verifies_user = False
    with pytest.raises(InvalidCode):
        await env.sign_in(device)


async def test_a_counter_that_goes_back_is_refused_and_reported(env: Env) -> None:
    """A cloned authenticator (its counter behind the stored one) is refused and published."""
    device = SoftAuthenticator()
    await env.register(device)
    for _ in range(3):
        await env.sign_in(device)
    device.counter = 1  # a clone taken after the first signature
    with pytest.raises(InvalidCode):
        await env.sign_in(device)
    (event,) = [e for e in env.events if isinstance(e, PasskeyCounterRegressed)]
    assert (event.user_id, event.stored, event.received) == (42, 3, 2)


async def test_a_challenge_is_single_use_even_for_concurrent_requests(env: Env) -> None:
    """Two requests carrying one assertion at once: exactly one signs in.

    The authenticator keeps no counter (synced passkeys often do not), so only the
    challenge's single use stands between a replay and a second session.
    """
    device = SoftAuthenticator(counts=False)
    await env.register(device)
    options = env.passkeys.authentication_options()
    assertion = device.get(options)
    results = await asyncio.gather(
        *(env.passkeys.authenticate(assertion) for _ in range(2)), return_exceptions=True
    )
    assert sum(isinstance(r, tuple) for r in results) == 1
    assert sum(isinstance(r, InvalidCode) for r in results) == 1
    with pytest.raises(InvalidCode):
        await env.passkeys.authenticate(assertion)


async def test_an_expired_or_misdirected_challenge_is_refused(env: Env) -> None:
    """A challenge past its TTL, or issued for registration, does not sign in."""
    device = SoftAuthenticator()
    await env.register(device)
    options = env.passkeys.authentication_options()
    env.clock.advance(CHALLENGE_TTL + 1)
    with pytest.raises(InvalidCode):
        await env.passkeys.authenticate(device.get(options))
    session = Session()
    options = await env.passkeys.registration_options(session, user_id=USER, user_name="ana")
    with pytest.raises(InvalidCode):
        await env.passkeys.authenticate(device.get(options))


async def test_unknown_or_deleted_passkeys_and_garbage_do_not_sign_in(env: Env) -> None:
    """A deleted passkey, another user's handle and malformed JSON all give InvalidCode."""
    device = SoftAuthenticator()
    await env.register(device)
    await env.store.delete_passkey(USER, device.credential_id)
    with pytest.raises(InvalidCode):
        await env.sign_in(device)
    for garbage in ("[]", "{}", '{"rawId": "!!", "response": {"userHandle": "x"}}'):
        env.passkeys.authentication_options()
        with pytest.raises(InvalidCode):
            await env.passkeys.authenticate(garbage)


async def test_rename_trims_and_bounds_the_name(env: Env) -> None:
    """rename stores a trimmed, printable name of at most 64 characters; unknown ids: False."""
    device = SoftAuthenticator()
    await env.register(device)
    assert await env.passkeys.rename(USER, device.credential_id, "  Phone\x00\n" + "x" * 100)
    (stored,) = await env.store.list_passkeys(USER)
    assert stored.name == ("Phone" + "x" * 100)[:64]
    assert await env.passkeys.rename(USER, device.credential_id, " \t ")
    (stored,) = await env.store.list_passkeys(USER)
    assert stored.name == "Passkey"
    assert not await env.passkeys.rename(USER, b"unknown", "x")


@pytest.mark.parametrize("forgery", ["random", "other-keyring", "longer-expiry"])
async def test_a_sign_in_challenge_not_issued_here_is_refused(env: Env, forgery: str) -> None:
    """The stateless challenge is only good with this keyring's MAC over its nonce and expiry.

    The authenticator signs whatever challenge it is given: a forged one must fail on the MAC,
    or the single-use claim alone would be all that stands between an attacker and any
    challenge of their choosing (one that never expires, say).
    """
    device = SoftAuthenticator()
    await env.register(device)
    genuine = unb64(json.loads(env.passkeys.authentication_options())["challenge"])
    if forgery == "random":
        challenge = os.urandom(len(genuine))
    elif forgery == "other-keyring":
        other = ChallengeKeeper(MemoryCounter(env.clock), Keyring(["other-" + "o" * 40]))
        challenge = other.issue_signed()
    else:  # the expiry pushed out, the MAC kept
        challenge = genuine[:16] + (2**40).to_bytes(8, "big") + genuine[24:]
    options = {**json.loads(env.passkeys.authentication_options()), "challenge": b64(challenge)}
    with pytest.raises(InvalidCode):
        await env.passkeys.authenticate(device.get(json.dumps(options)))
