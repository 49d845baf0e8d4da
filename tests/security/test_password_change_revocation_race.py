"""A password change that a revocation overtakes is not made, and its session ends.

The same mechanism as the factor changes (``test_mfa_disable_revocation_race``): the change's
first rotation keeps the requesting session. When an administrator's "sign out everywhere"
lands after the current password was checked and before that rotation, the session's record
is gone: the rotation must not carry it over, and the new password, asked for by a session the
administrator has just ended, must not be set.
"""

from __future__ import annotations

import pytest

from tests.integration.test_api import PASSWORD, csrf, login
from tests.support.mfa_server import SQLITE_OR_REDIS, MfaServer, mfa_server_fixture

NEW_PASSWORD = "a brand new passphrase"


server = mfa_server_fixture(SQLITE_OR_REDIS)


async def test_a_sign_out_everywhere_overtaking_a_password_change_stops_it(
    server: MfaServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Revoked after the current password's check: 401, the old password stands, no session."""
    auth = server.app.state.authenticator
    user, client = await server.signed_in("ann@example.com")
    hash_password = auth.hasher.hash

    async def revoked_meanwhile(password: str) -> str:
        """The new hash is computed after the check, before the first rotation."""
        await auth.revoke_all_sessions(user.id)
        return await hash_password(password)

    monkeypatch.setattr(auth.hasher, "hash", revoked_meanwhile)
    changed = await client.post(
        "/password",
        json={"current_password": PASSWORD, "new_password": NEW_PASSWORD},
        headers=await csrf(client),
    )
    monkeypatch.undo()
    assert changed.status_code == 401, changed.text
    assert (await client.get("/me")).status_code == 401
    assert (await login(server.client(), "ann@example.com")).status_code == 200
    assert (await login(server.client(), "ann@example.com", NEW_PASSWORD)).status_code == 401
