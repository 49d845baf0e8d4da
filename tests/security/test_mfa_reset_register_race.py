"""An administrator's reset-mfa leaves no passkey that a revoked session was registering.

Found by an attack review. ``reset_factors`` (today: ``forget_factors`` over the factors' and
the passkeys' stores, then a rotation that ends every session) is the answer to a taken-over
account. ``register_passkey`` reads the session's user first and writes the passkey later
(``Passkeys.register`` -> ``store.add_passkey``), with nothing tying the write to the epoch the
session was served under: a registration in flight when the reset runs stores its passkey
*after* the wipe, and the registering session, which the reset ended, is even stored again by
``_factor_changed`` (see test_mfa_disable_revocation_race.py). The attacker the reset was meant
to throw out keeps a passkey that signs in without the password.
"""

from __future__ import annotations

from typing import Any

import pytest

from tests.integration.test_passkey_api import passkey_login, register
from tests.support.mfa_server import MfaServer, mfa_server_fixture
from tests.support.webauthn import SoftAuthenticator

server = mfa_server_fixture()


async def test_a_registration_racing_a_reset_leaves_no_passkey(
    server: MfaServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The reset runs after the registration's session check, before its write: no passkey."""
    auth = server.app.state.authenticator
    user, attacker = await server.signed_in("ann@example.com")
    store = auth.passkeys.store
    add_passkey = store.add_passkey
    reset: list[int] = []

    async def reset_meanwhile(user_id: str, passkey: Any) -> Any:
        """The administrator's reset-mfa lands just before the passkey is written."""
        if not reset:
            reset.append(await auth.reset_factors(user.id))
        return await add_passkey(user_id, passkey)

    monkeypatch.setattr(store, "add_passkey", reset_meanwhile)
    key = SoftAuthenticator()
    await register(attacker, key)
    assert reset, "the reset did not run inside the registration"
    left = await store.list_passkeys(str(user.id))
    signed = await passkey_login(server.client(), key)
    assert (len(left), signed.status_code) == (0, 401), (
        f"{len(left)} passkey(s) outlived the reset-mfa; signing in with it: {signed.status_code}"
    )
