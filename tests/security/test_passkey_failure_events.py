"""Attack 2: an anonymous client can make the security log blame any account for a passkey failure.

``PasskeyLogin.login_with_passkey`` publishes ``SecondFactorFailed(user_id=typed)`` for a failed
assertion, where ``typed`` is read from the assertion's ``userHandle``: a field the client
chooses and no signature covers (the module says so itself: "a user handle is the attacker's to
choose"). Anyone can therefore write ``second_factor_failed user=<victim>`` lines for any
account, as often as the address throttle allows from each address: the audit trail an operator
or a SIEM rule reads as "someone is attacking Bob's second factor", or "Bob's passkey is
failing", is the attacker's to forge. A failure before the assertion is verified names no user.
"""

from __future__ import annotations

import logging
from typing import Any

import pytest

from tests.integration.test_api import csrf
from tests.integration.test_passkey_api import INVALID_PASSKEY, assertion, with_passkey
from tests.support.mfa_server import MfaServer, mfa_server_fixture
from tests.support.webauthn import SoftAuthenticator, b64

server = mfa_server_fixture()


async def test_a_forged_user_handle_is_not_logged_as_the_victims_failure(
    server: MfaServer, caplog: pytest.LogCaptureFixture
) -> None:
    """Mallory's own key, Bob's user handle: no event may name Bob."""
    await with_passkey(server, "bob@example.com")
    bob = await server.app.state.authenticator.users.get_by_email("bob@example.com")
    seen: list[Any] = []
    server.app.state.authenticator.events.subscribe(object, seen.append)
    attacker = server.client()
    forged = await assertion(attacker, SoftAuthenticator())  # a key nobody registered
    forged["response"]["userHandle"] = b64(str(bob.id).encode())
    caplog.clear()
    with caplog.at_level(logging.INFO, logger="sessionauth.security"):
        response = await attacker.post(
            "/passkeys/login", json={"credential": forged}, headers=await csrf(attacker)
        )
    assert (response.status_code, response.json()) == (401, INVALID_PASSKEY)
    blamed = [e for e in seen if getattr(e, "user_id", None) == bob.id]
    assert blamed == [], f"events naming Bob from a forged handle: {blamed}"
    assert [r.getMessage() for r in caplog.records if getattr(r, "user", None) == bob.id] == []
