"""The admin page's "Reset 2FA" needs a recent login and never acts on the admin's own row.

Found by an attack review: the reset stripped a second factor without a recent login.

``POST /mfa/totp/disable`` needs a login within the last 10 minutes *and* a current code (or a
recovery code): "a session left open on a shared computer must not be enough to take over or
strip the account's second factor" (:mod:`sessionauth.server.mfa_api`). The admin page offers
"Reset 2FA" on every row with factors, the administrator's own included, and
``POST /ui/admin/users/{id}/reset-mfa`` checks only the admin role: an administrator's session
left open for hours removes its own second factor (and any other administrator's), with no
code and no fresh login. From then on the password alone signs in to those accounts.
"""

from __future__ import annotations

import re

from tests.integration.test_mfa_api import HTML, _enrol
from tests.support.mfa_server import MfaServer, mfa_server_fixture

STALE = 601  # seconds: past mfa_api.RECENT_AUTH


server = mfa_server_fixture()


async def _admin_resets(
    server: MfaServer, target_email: str | None, *, after: float = STALE
) -> tuple[bool, str]:
    """An admin with TOTP waits ``after`` seconds, then resets ``target_email``'s factors.

    Returns whether the target (the admin itself when ``None``) still has TOTP afterwards,
    and the admin page as it was listed before the reset.
    """
    auth = server.app.state.authenticator
    admin, client = await server.signed_in("root@example.com", role="admin")
    await _enrol(server, client)
    target = admin
    if target_email is not None:
        target, other = await server.signed_in(target_email, role="admin")
        await _enrol(server, other)
    server.clock.advance(after)
    listing = await client.get("/admin/users", headers=HTML)
    assert listing.status_code == 200
    token = re.findall(r'name="csrf_token" value="([^"]*)"', listing.text)[0]
    await client.post(
        f"/ui/admin/users/{target.id}/reset-mfa", data={"csrf_token": token}, headers=HTML
    )
    enabled: bool = await auth.factors.totp_enabled(str(target.id))
    return enabled, listing.text


async def test_a_stale_admin_session_cannot_strip_its_own_second_factor(
    server: MfaServer,
) -> None:
    """The admin's own TOTP survives a reset asked 10 minutes after the login."""
    enabled, _ = await _admin_resets(server, None)
    assert enabled, "own TOTP removed by a stale session"


async def test_a_stale_admin_session_cannot_strip_another_admins_second_factor(
    server: MfaServer,
) -> None:
    """Another administrator's TOTP survives a reset asked by a stale admin session."""
    enabled, _ = await _admin_resets(server, "second@example.com")
    assert enabled, "peer admin TOTP removed"


async def test_a_fresh_admin_session_cannot_strip_its_own_second_factor_either(
    server: MfaServer,
) -> None:
    """The page offers no Reset 2FA on the admin's own row, and the form refuses it anyway."""
    enabled, page = await _admin_resets(server, None, after=0)
    assert enabled, "own TOTP removed through the admin reset"
    assert "/reset-mfa" not in page


async def test_a_fresh_admin_session_resets_a_peer_admins_second_factor(
    server: MfaServer,
) -> None:
    """Within the recent-login window an administrator may reset another administrator's."""
    enabled, page = await _admin_resets(server, "second@example.com", after=0)
    assert not enabled, "a recent admin login could not reset a peer's lost authenticator"
    assert page.count("/reset-mfa") == 1
