"""An administrator's password reset is not undone by a password change already in flight.

Found by attack review 4. ``_rotating`` checks that the requesting session survived only its
*first* rotation (commit f09008b). A revocation that lands after that rotation and before the
users-database write was not noticed: the change's write still happened, after the
administrator's. An attacker who holds a stolen session (and the current password) starts a
password change; the administrator, to throw them out, sets a new password (ending every
session). The attacker's in-flight write landed last: their password replaced the
administrator's, and they signed in again with it. Every password write is now a
compare-and-set of the hash it replaces (``UserSource.set_password(..., replacing=)``), so the
late write is refused.
"""

from __future__ import annotations

import asyncio

import bcrypt
import httpx
import pytest

from tests.integration.test_api import PASSWORD, csrf, login
from tests.support.mfa_server import SQLITE_OR_REDIS, MfaServer, mfa_server_fixture
from tests.support.password_writes import before_the_next_password_write

ATTACKER_PASSWORD = "the attacker's own passphrase"
ADMIN_PASSWORD = "the administrator's reset passphrase"


server = mfa_server_fixture(SQLITE_OR_REDIS)


async def test_an_admin_reset_during_a_password_change_is_not_overwritten(
    server: MfaServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The reset lands after the change's first rotation: the reset's password must stand."""
    auth = server.app.state.authenticator
    user, attacker = await server.signed_in("ann@example.com")
    # The change's write: the administrator's whole reset runs just before it.
    fired = before_the_next_password_write(
        monkeypatch, auth.users, lambda: auth.set_password(user.id, ADMIN_PASSWORD)
    )
    changed = await attacker.post(
        "/password",
        json={"current_password": PASSWORD, "new_password": ATTACKER_PASSWORD},
        headers=await csrf(attacker),
    )
    monkeypatch.undo()
    assert fired, "the reset did not run inside the change"
    assert changed.status_code == 401  # the current password it proved is no longer current
    assert (await attacker.get("/me")).status_code == 401
    relogin = await login(server.client(), "ann@example.com", ATTACKER_PASSWORD)
    assert relogin.status_code == 401, (
        f"the change answered {changed.status_code} and its password replaced the "
        f"administrator's reset: the attacker signs in again ({relogin.status_code})"
    )
    assert (await login(server.client(), "ann@example.com", ADMIN_PASSWORD)).status_code == 200


async def test_a_rehash_at_login_does_not_bring_back_a_password_just_reset(
    server: MfaServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A bcrypt account signs in with a stolen password while the administrator resets it.

    The login verified the old password and upgrades its hash to argon2id; the reset lands
    between the two. The upgrade (of the old password) must not overwrite the reset.
    """
    auth = server.app.state.authenticator
    legacy = bcrypt.hashpw(PASSWORD.encode(), bcrypt.gensalt(rounds=4)).decode()
    user = await auth.users.create("ann@example.com", legacy)
    # The login's upgrade: the administrator's whole reset runs just before it.
    fired = before_the_next_password_write(
        monkeypatch, auth.users, lambda: auth.set_password(user.id, ADMIN_PASSWORD)
    )
    thief = await login(server.client(), "ann@example.com", PASSWORD)
    monkeypatch.undo()
    assert fired, "the reset did not run inside the login"
    assert thief.status_code == 401  # its account changed under it: stale, no session
    assert (await login(server.client(), "ann@example.com", PASSWORD)).status_code == 401
    assert (await login(server.client(), "ann@example.com", ADMIN_PASSWORD)).status_code == 200


async def _changes_at_once(
    server: MfaServer, count: int
) -> tuple[list[dict[str, str]], list[httpx.Response]]:
    """Ann's session sends ``count`` password changes at once, each to a password of its own."""
    _, client = await server.signed_in("ann@example.com")
    headers = await csrf(client)
    bodies = [
        {"current_password": PASSWORD, "new_password": f"the new passphrase number {n:02d}"}
        for n in range(count)
    ]
    answers = await asyncio.gather(
        *(client.post("/password", json=body, headers=headers) for body in bodies)
    )
    return bodies, list(answers)


async def test_two_changes_from_one_session_at_once_leave_one_password(server: MfaServer) -> None:
    """A double-submitted change form: both proved the same current password, one wins.

    The loser answers 401 (the password it proved is no longer current) and the password is
    the winner's; before, both answered 200 and the last write won.
    """
    bodies, answers = await _changes_at_once(server, 2)
    codes = sorted(answer.status_code for answer in answers)
    assert codes == [200, 401], codes
    winner = bodies[[a.status_code for a in answers].index(200)]["new_password"]
    loser = bodies[[a.status_code for a in answers].index(401)]["new_password"]
    assert (await login(server.client(), "ann@example.com", winner)).status_code == 200
    assert (await login(server.client(), "ann@example.com", loser)).status_code == 401


async def test_forty_changes_from_one_session_at_once_leave_one_password(
    server: MfaServer,
) -> None:
    """The same change request 40 times at once, each with its own new password: one wins.

    The others answer 401 (their proof is stale) or 429 (the account's attempt budget), and
    exactly the winner's password signs in; before the compare-and-set write, up to five
    answered 200 and the last write stood.
    """
    bodies, answers = await _changes_at_once(server, 40)
    codes = [answer.status_code for answer in answers]
    assert codes.count(200) == 1, codes
    assert set(codes) <= {200, 401, 429}, codes
    won = codes.index(200)
    winner, loser = bodies[won]["new_password"], bodies[won - 1]["new_password"]
    assert (await login(server.client(), "ann@example.com", winner)).status_code == 200
    assert (await login(server.client(), "ann@example.com", loser)).status_code == 401
