"""Recovery codes never outlive the TOTP factor they stand in for, also under concurrency.

Found by an attack review. Today's change orders ``SecondFactors.disable_totp`` "codes first,
then the secret" so that no recovery code outlives its factor and passes the second step of an
account that also has a passkey. It holds against an outage between the two writes, not
against a renewal running at the same time: ``new_recovery_codes`` checks ``totp_enabled``
and then swaps the whole set, so a renewal that checks before the disable's ``delete_totp``
and writes after its ``set_recovery_codes([])`` leaves ten live codes with TOTP off. Nothing
refuses them later: ``verify_second_factor`` consumes a recovery code without asking whether
TOTP is on, and the password step of an account with a passkey holds the login for a second
step. Whoever had a recent session when the owner turned TOTP off (the owner's other session
ends, but the ten codes it was shown stay) signs in with the password and one of them.
"""

from __future__ import annotations

from typing import Any

import httpx
import pytest

from tests.integration.test_api import csrf, login
from tests.integration.test_mfa_api import _enrol, _recovered
from tests.integration.test_passkey_api import register
from tests.support.mfa_server import MfaServer, mfa_server_fixture
from tests.support.webauthn import SoftAuthenticator

server = mfa_server_fixture()


async def test_a_renewal_racing_a_disable_leaves_no_recovery_code(
    server: MfaServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    """New codes asked while TOTP is being turned off: none is left, none completes a login."""
    auth = server.app.state.authenticator
    user, owner = await server.signed_in("ann@example.com")
    assert (await register(owner, SoftAuthenticator())).status_code == 200
    secret, codes = await _enrol(server, owner)
    other = await _recovered(server, "ann@example.com", codes[0])
    store = auth.factors.store
    delete_totp = store.delete_totp
    renewed: list[httpx.Response] = []

    async def renewal_meanwhile(user_id: str) -> Any:
        """The other session renews the codes after the disable cleared them, before the secret."""
        if not renewed:
            renewed.append(await other.post("/mfa/recovery-codes", headers=await csrf(other)))
        return await delete_totp(user_id)

    monkeypatch.setattr(store, "delete_totp", renewal_meanwhile)
    off = await owner.post(
        "/mfa/totp/disable", json={"code": server.code(secret)}, headers=await csrf(owner)
    )
    assert off.status_code == 200, off.text
    assert renewed, "the renewal did not run in the window"
    assert renewed[0].status_code == 200, renewed[0].text
    assert await auth.factors.methods(str(user.id)) == ["passkey"]
    left = await store.count_recovery_codes(str(user.id))

    # The password step holds the login (a passkey); a code the renewal showed completes it.
    attacker = server.client()
    held = await login(attacker, "ann@example.com")
    assert held.json()["mfaRequired"] is True
    token = {"X-CSRF-Token": held.json()["csrfToken"]}
    stolen = renewed[0].json()["recoveryCodes"][0]
    done = await attacker.post("/login/mfa", json={"recoveryCode": stolen}, headers=token)
    assert (left, done.status_code) == (0, 401), (
        f"TOTP is off but {left} recovery codes live on; one signs in: {done.status_code}"
    )
