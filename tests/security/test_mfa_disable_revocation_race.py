"""A TOTP disable in flight never keeps a session that a revocation landing meanwhile ended.

Found by an attack review. ``disable_totp`` reads the session's user, checks the code (a TOTP
code or, since today, a recovery code), removes the factor, and only then moves the epoch with
``_factor_changed``: ``_change_principal(rotate=True, keep=session)`` then
``session.regenerate()``. When an administrator's ``reset-mfa``, a "sign out everywhere" or a
password reset lands between the code check and that rotation, it deletes the session's record,
but the disable's rotation still ``restamp()``s the request's session with the *new* epoch
(whether or not the store kept the record), and the regeneration's create-if-current then
stores it under a new token with that current epoch. The session the revocation ended is back,
signed in, with a fresh cookie: an attacker who cycles TOTP off and on in a stolen session
outlives the revocation meant to throw them out.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from typing import Any

import pytest

from tests.integration.test_api import csrf
from tests.integration.test_mfa_api import _enrolled, _recovered
from tests.support.mfa_server import SQLITE_OR_REDIS, MfaServer, mfa_server_fixture

server = mfa_server_fixture(SQLITE_OR_REDIS)


Revocation = Callable[[Any, int], Awaitable[object]]

REVOCATIONS: dict[str, Revocation] = {
    "reset-mfa": lambda auth, user_id: auth.reset_factors(user_id),
    "sign-out-everywhere": lambda auth, user_id: auth.revoke_all_sessions(user_id),
    "password-set": lambda auth, user_id: auth.set_password(user_id, "another good password"),
}


@pytest.mark.parametrize("revocation", sorted(REVOCATIONS))
async def test_a_revocation_during_a_disable_ends_the_disabling_session(
    server: MfaServer, monkeypatch: pytest.MonkeyPatch, revocation: str
) -> None:
    """The revocation lands after the disable's code check: the disabling session stays ended."""
    auth = server.app.state.authenticator
    user, _, codes = await _enrolled(server, "ann@example.com")
    attacker = await _recovered(server, "ann@example.com", codes[0])
    assert (await attacker.get("/me")).status_code == 200
    store = auth.factors.store
    delete_totp = store.delete_totp
    fired: list[object] = []

    async def revoked_meanwhile(user_id: str) -> Any:
        """The disable's last factor write, then the revocation, before the epoch moves."""
        result = await delete_totp(user_id)
        if not fired:
            fired.append(await REVOCATIONS[revocation](auth, user.id))
        return result

    monkeypatch.setattr(store, "delete_totp", revoked_meanwhile)
    off = await attacker.post(
        "/mfa/totp/disable", json={"recoveryCode": codes[1]}, headers=await csrf(attacker)
    )
    assert fired, "the revocation did not run inside the disable"
    assert off.status_code in (200, 401, 409), off.text
    me = await attacker.get("/me")
    assert me.status_code == 401, (
        f"the session {revocation} ended is signed in again after the racing disable: {me.text}"
    )
    assert await auth.count_sessions(user.id) == 0


@pytest.mark.parametrize("turns", [0, 10, 50])
async def test_a_sign_out_everywhere_racing_a_disable_ends_it(
    server: MfaServer, turns: int
) -> None:
    """No hook: an administrator's "sign out everywhere" while the disable runs ends it too."""
    auth = server.app.state.authenticator
    user, _, codes = await _enrolled(server, "ann@example.com")
    attacker = await _recovered(server, "ann@example.com", codes[0])
    headers = await csrf(attacker)
    disable = asyncio.ensure_future(
        attacker.post("/mfa/totp/disable", json={"recoveryCode": codes[1]}, headers=headers)
    )
    for _ in range(turns):
        await asyncio.sleep(0)
    await auth.revoke_all_sessions(user.id)
    off = await disable
    me = await attacker.get("/me")
    assert me.status_code == 401, (
        f"signed in after sign-out-everywhere raced the disable ({off.status_code}): {me.text}"
    )
