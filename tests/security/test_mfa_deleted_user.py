"""Deleting a user deletes their second factors (found by an attack review: they stayed).

``Authenticator.delete_user`` disables the principal and deletes the users row, but never
touches the factor store (``reset_factors`` is the only caller of ``FactorStore.reset``): the
encrypted TOTP secret and the recovery-code hashes of a deleted user live on for good, keyed
by the user id. Kept secrets are a liability of their own (a later key or hash leak), and an
id that comes back (a user source with text ids such as user names, a restored or re-seeded
database) inherits the old owner's second factor: the old owner's authenticator app and
recovery codes pass the new account's second step.
"""

from __future__ import annotations

from tests.integration.test_mfa_api import _enrolled
from tests.support.mfa_server import SQLITE_OR_REDIS, MfaServer, mfa_server_fixture

server = mfa_server_fixture(SQLITE_OR_REDIS)


async def test_deleting_a_user_removes_their_second_factors(server: MfaServer) -> None:
    """After the admin deletes Ann, no TOTP secret or recovery code of hers is stored."""
    user, _, _ = await _enrolled(server, "ann@example.com")
    auth = server.app.state.authenticator
    await auth.delete_user(user.id)
    store = auth.factors.store
    assert await store.get_totp(str(user.id)) is None, "TOTP secret kept after deletion"
    assert await store.count_recovery_codes(str(user.id)) == 0, "recovery codes kept"
