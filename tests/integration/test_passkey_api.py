"""Passkeys in the reference server, over HTTP, with the software authenticator.

The server's relying party is its public URL (the default ``http://127.0.0.1:8000``), so the
authenticator signs for that origin and RP ID, as a browser on that site would.
"""

from __future__ import annotations

import asyncio
import contextlib
import copy
import json
import logging
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from sessionauth.auth.passkeys import Passkeys
from tests.integration.test_api import INVALID, PASSWORD, csrf, login
from tests.integration.test_mfa_api import _enrol
from tests.support.mfa_server import MfaServer, serve_mfa, store_overrides
from tests.support.webauthn import SoftAuthenticator, b64

SITE = "http://127.0.0.1:8000"
INVALID_PASSKEY = {"error": "Invalid passkey"}
NOT_FOUND = {"error": "Passkey not found"}
RECENT = {"error": "Recent authentication required"}


@pytest.fixture(params=["sqlite", "memory", "redis"])
async def any_server(request: pytest.FixtureRequest, tmp_path: Path) -> AsyncIterator[MfaServer]:
    """The server with its sessions and counters on SQLite, in memory, or on Redis.

    The passkeys stay in the users database (SQLite); the contract test
    (tests/contract/test_passkey_login.py) runs them on every backend.
    """
    async for running in serve_mfa(tmp_path, **store_overrides(request, request.param)):
        yield running


async def register(
    client: httpx.AsyncClient, key: SoftAuthenticator, name: str = "Laptop"
) -> httpx.Response:
    """Ask for options, let ``key`` make a credential, post it."""
    options = await client.post("/passkeys/register/options", headers=await csrf(client))
    assert options.status_code == 200, options.text
    credential = key.create(json.dumps(options.json()["publicKey"]), SITE)
    return await client.post(
        "/passkeys/register",
        json={"credential": credential, "name": name},
        headers=await csrf(client),
    )


async def assertion(client: httpx.AsyncClient, key: SoftAuthenticator) -> dict[str, Any]:
    """Login options for ``client``'s session, answered by ``key``."""
    options = await client.post("/passkeys/login/options", headers=await csrf(client))
    assert options.status_code == 200, options.text
    return key.get(json.dumps(options.json()["publicKey"]), SITE)


async def passkey_login(client: httpx.AsyncClient, key: SoftAuthenticator) -> httpx.Response:
    """A whole sign-in with ``key``."""
    credential = await assertion(client, key)
    return await client.post(
        "/passkeys/login", json={"credential": credential}, headers=await csrf(client)
    )


async def with_passkey(
    server: MfaServer, email: str
) -> tuple[httpx.AsyncClient, SoftAuthenticator]:
    """A signed-in user with one registered passkey."""
    _, client = await server.signed_in(email)
    key = SoftAuthenticator()
    response = await register(client, key)
    assert response.status_code == 200, response.text
    return client, key


async def test_register_list_rename_sign_in_and_delete(any_server: MfaServer) -> None:
    """The whole life of a passkey; once deleted it signs nobody in."""
    server = any_server
    user, client = await server.signed_in("ann@example.com")
    key = SoftAuthenticator()
    response = await register(client, key, name="  My\x00 laptop  ")
    assert response.status_code == 200, response.text
    made = response.json()["passkey"]
    assert made["id"] == b64(key.credential_id)
    assert (made["name"], made["lastUsed"], made["backedUp"]) == ("My laptop", None, True)
    assert made["backupEligible"] is True
    assert made["transports"] == ["internal", "hybrid"]
    assert made["created"] == server.clock.now
    listed = (await client.get("/passkeys")).json()["passkeys"]
    assert listed == [made]
    renamed = await client.patch(
        f"/passkeys/{made['id']}", json={"name": "Work"}, headers=await csrf(client)
    )
    assert (renamed.status_code, renamed.json()["passkey"]["name"]) == (200, "Work")

    other = server.client()
    signed = await passkey_login(other, key)
    assert signed.status_code == 200, signed.text
    body = signed.json()
    assert body["user"] == {"id": user.id, "email": "ann@example.com", "role": "user"}
    assert body["csrfToken"]
    assert (await other.get("/me")).json()["id"] == user.id
    used = (await client.get("/passkeys")).json()["passkeys"][0]
    assert used["lastUsed"] == server.clock.now

    deleted = await client.delete(f"/passkeys/{made['id']}", headers=await csrf(client))
    assert deleted.json() == {"success": True, "revoked": 1}
    assert (await client.get("/passkeys")).json() == {"passkeys": []}
    assert (await other.get("/me")).status_code == 401  # the epoch moved
    again = await passkey_login(server.client(), key)
    assert (again.status_code, again.json()) == (401, INVALID_PASSKEY)


async def test_registering_ends_the_other_sessions_and_keeps_this_one(server: MfaServer) -> None:
    """A new passkey moves the epoch: the other session ends, this one gets a new token."""
    _, client = await server.signed_in("ann@example.com")
    other = server.client()
    assert (await login(other, "ann@example.com")).status_code == 200
    before = client.cookies.get("session") or dict(client.cookies)
    assert (await register(client, SoftAuthenticator())).status_code == 200
    assert (await client.get("/me")).status_code == 200
    assert (await other.get("/me")).status_code == 401
    assert (client.cookies.get("session") or dict(client.cookies)) != before


async def test_user_verification_is_required_to_register_and_to_sign_in(
    server: MfaServer,
) -> None:
    """An authenticator that does not verify the user is refused at both ceremonies."""
    _, client = await server.signed_in("ann@example.com")
    lazy = SoftAuthenticator(verifies_user=False)
    response = await register(client, lazy)
    assert (response.status_code, response.json()) == (400, INVALID_PASSKEY)
    assert (await client.get("/passkeys")).json() == {"passkeys": []}
    key = SoftAuthenticator()
    assert (await register(client, key)).status_code == 200
    key.verifies_user = False
    refused = await passkey_login(server.client(), key)
    assert (refused.status_code, refused.json()) == (401, INVALID_PASSKEY)


async def test_a_replayed_assertion_or_challenge_is_refused(server: MfaServer) -> None:
    """The same assertion twice, or an old one against new options: 401, no session."""
    _, key = await with_passkey(server, "ann@example.com")
    client = server.client()
    credential = await assertion(client, key)
    headers = await csrf(client)
    first = await client.post("/passkeys/login", json={"credential": credential}, headers=headers)
    assert first.status_code == 200
    fresh = server.client()
    stolen = await fresh.post(
        "/passkeys/login", json={"credential": credential}, headers=await csrf(fresh)
    )
    assert (stolen.status_code, stolen.json()) == (401, INVALID_PASSKEY)
    await assertion(fresh, key)  # new options: a new challenge the old assertion lacks
    replay = await fresh.post(
        "/passkeys/login", json={"credential": credential}, headers=await csrf(fresh)
    )
    assert (replay.status_code, replay.json()) == (401, INVALID_PASSKEY)
    assert (await fresh.get("/me")).status_code == 401


async def test_a_counter_going_backwards_is_refused_and_logged(
    server: MfaServer, caplog: pytest.LogCaptureFixture
) -> None:
    """A cloned authenticator (its counter behind the stored one) is refused and logged."""
    _, key = await with_passkey(server, "ann@example.com")
    assert (await passkey_login(server.client(), key)).status_code == 200
    assert (await passkey_login(server.client(), key)).status_code == 200
    seen: list[Any] = []
    server.app.state.authenticator.events.subscribe(object, seen.append)
    key.counter = 0  # the clone signs with count 1 again
    with caplog.at_level(logging.ERROR, logger="sessionauth.security"):
        cloned = await passkey_login(server.client(), key)
    assert (cloned.status_code, cloned.json()) == (401, INVALID_PASSKEY)
    regressed = [e for e in seen if type(e).__name__ == "PasskeyCounterRegressed"]
    assert [(e.stored, e.received) for e in regressed] == [(2, 1)]
    assert "passkey_counter_regressed" in caplog.text


async def test_a_forged_user_handle_cannot_use_another_users_passkey(server: MfaServer) -> None:
    """Bob's credential id under Bob's handle, signed by Ann's key: refused, no session."""
    _, bob_key = await with_passkey(server, "bob@example.com")
    bob = await server.app.state.authenticator.users.get_by_email("bob@example.com")
    _, ann_key = await with_passkey(server, "ann@example.com")
    client = server.client()
    forged = await assertion(client, ann_key)
    forged["id"] = forged["rawId"] = b64(bob_key.credential_id)
    forged["response"]["userHandle"] = b64(str(bob.id).encode())
    response = await client.post(
        "/passkeys/login", json={"credential": forged}, headers=await csrf(client)
    )
    assert (response.status_code, response.json()) == (401, INVALID_PASSKEY)
    # Ann's own credential id under Bob's handle: Bob has no such passkey.
    client = server.client()
    swapped = await assertion(client, ann_key)
    swapped["response"]["userHandle"] = b64(str(bob.id).encode())
    response = await client.post(
        "/passkeys/login", json={"credential": swapped}, headers=await csrf(client)
    )
    assert (response.status_code, response.json()) == (401, INVALID_PASSKEY)
    assert (await client.get("/me")).status_code == 401


async def test_register_and_delete_need_a_recent_login(server: MfaServer) -> None:
    """Older than 10 minutes: 403 for the options, the registration and the deletion."""
    client, key = await with_passkey(server, "ann@example.com")
    options = await client.post("/passkeys/register/options", headers=await csrf(client))
    credential = SoftAuthenticator().create(json.dumps(options.json()["publicKey"]), SITE)
    server.clock.advance(601)
    for response in (
        await client.post("/passkeys/register/options", headers=await csrf(client)),
        await client.post(
            "/passkeys/register", json={"credential": credential}, headers=await csrf(client)
        ),
        await client.delete(f"/passkeys/{b64(key.credential_id)}", headers=await csrf(client)),
    ):
        assert (response.status_code, response.json()) == (403, RECENT)
    assert len((await client.get("/passkeys")).json()["passkeys"]) == 1
    # Listing and renaming need only a session.
    renamed = await client.patch(
        f"/passkeys/{b64(key.credential_id)}", json={"name": "x"}, headers=await csrf(client)
    )
    assert renamed.status_code == 200


async def test_the_routes_of_my_passkeys_need_a_session(server: MfaServer) -> None:
    """Anonymous: 401 on every route but the sign-in's."""
    client = server.client()
    headers = await csrf(client)
    for method, path in (
        ("GET", "/passkeys"),
        ("POST", "/passkeys/register/options"),
        ("POST", "/passkeys/register"),
        ("PATCH", "/passkeys/AAAA"),
        ("DELETE", "/passkeys/AAAA"),
    ):
        body = (
            {"name": "x"}
            if method == "PATCH"
            else {"credential": {}}
            if "register" in path
            else None
        )
        response = await client.request(method, path, json=body, headers=headers)
        assert response.status_code == 401, (method, path, response.text)


async def test_deleting_ends_the_other_sessions_and_unknown_ids_are_404(
    server: MfaServer,
) -> None:
    """Delete: revoked counts the other sessions (a passkey login's too); unknown: 404."""
    client, key = await with_passkey(server, "ann@example.com")
    elsewhere = server.client()
    assert (await passkey_login(elsewhere, key)).status_code == 200
    for bad in ("AAAA", "A", "%2E%2E", "x" * 1364):
        for method in ("DELETE", "PATCH"):
            response = await client.request(
                method,
                f"/passkeys/{bad}",
                json={"name": "n"} if method == "PATCH" else None,
                headers=await csrf(client),
            )
            assert response.status_code in (400, 404), (bad, method, response.text)
    deleted = await client.delete(f"/passkeys/{b64(key.credential_id)}", headers=await csrf(client))
    assert deleted.json() == {"success": True, "revoked": 1}
    assert (await elsewhere.get("/me")).status_code == 401
    assert (await client.get("/me")).status_code == 200
    gone = await client.delete(f"/passkeys/{b64(key.credential_id)}", headers=await csrf(client))
    assert (gone.status_code, gone.json()) == (404, NOT_FOUND)


async def test_a_disabled_user_cannot_sign_in_with_a_passkey(server: MfaServer) -> None:
    """Disabled: the same 401 as a bad assertion; enabled again, the passkey works."""
    _, key = await with_passkey(server, "ann@example.com")
    auth = server.app.state.authenticator
    user = await auth.users.get_by_email("ann@example.com")
    await auth.set_disabled(user.id, True)
    client = server.client()
    refused = await passkey_login(client, key)
    assert (refused.status_code, refused.json()) == (401, INVALID_PASSKEY)
    assert (await client.get("/me")).status_code == 401
    await auth.set_disabled(user.id, False)
    assert (await passkey_login(server.client(), key)).status_code == 200


async def test_an_unverified_email_is_refused_when_verification_is_required(
    tmp_path: Path,
) -> None:
    """With require_verified: 403 Email not verified, as for the password login."""
    key = SoftAuthenticator()
    async with contextlib.aclosing(serve_mfa(tmp_path)) as servers:
        async for server in servers:
            auth = server.app.state.authenticator
            hashed = await auth.hasher.hash(PASSWORD)
            await auth.users.create("ann@example.com", hashed, verified=False)
            client = server.client()
            assert (await login(client, "ann@example.com")).status_code == 200
            assert (await register(client, key)).status_code == 200
    # The same databases, now requiring a confirmed email.
    async with contextlib.aclosing(serve_mfa(tmp_path, require_verified=True)) as servers:
        async for server in servers:
            client = server.client()
            refused = await passkey_login(client, key)
            assert (refused.status_code, refused.json()) == (403, {"error": "Email not verified"})
            assert (await client.get("/me")).status_code == 401


async def test_a_passkey_login_is_complete_for_an_account_with_totp(server: MfaServer) -> None:
    """Both factors at once: no mfaRequired step, even with TOTP on."""
    client, key = await with_passkey(server, "ann@example.com")
    await _enrol(server, client)
    other = server.client()
    held = await login(other, "ann@example.com")
    assert held.json()["mfaRequired"] is True
    signed = await passkey_login(other, key)  # the held login is dropped, this one completes
    assert signed.status_code == 200
    assert signed.json()["success"] is True
    assert (await other.get("/me")).status_code == 200


async def test_failed_passkey_logins_are_throttled_per_address(server: MfaServer) -> None:
    """Five failures from one address, then 429 with Retry-After, even for a good passkey."""
    _, key = await with_passkey(server, "ann@example.com")
    stranger = SoftAuthenticator()
    stranger.user_handle = b"1"
    for _ in range(5):
        response = await passkey_login(server.client(), stranger)
        assert response.status_code == 401
    blocked = await passkey_login(server.client(), key)
    assert blocked.status_code == 429
    assert int(blocked.headers["Retry-After"]) >= 1


class GatedPasskeys(Passkeys):
    """The server's passkeys, held between the principal read and the assertion check."""

    gate: asyncio.Event
    entered: asyncio.Event

    async def authenticate(self, credential: str | dict[str, Any]) -> tuple[str, Any]:
        """Wait for the test to change the account, then verify as usual."""
        self.entered.set()
        await self.gate.wait()
        return await super().authenticate(credential)


@pytest.mark.parametrize("change", ["disable", "revoke", "password", "demote"])
async def test_an_account_change_racing_the_sign_in(server: MfaServer, change: str) -> None:
    """Read before, stored after the change: refused on a new epoch, the new role otherwise."""
    auth = server.app.state.authenticator
    admin = await server.add_user("root@example.com", role="admin")
    _, key = await with_passkey(server, "ann@example.com")
    user = await auth.users.get_by_email("ann@example.com")
    await auth.set_role(user.id, "admin", actor=admin.id)
    gated = copy.copy(auth.passkeys)
    gated.__class__ = GatedPasskeys
    gated.gate, gated.entered = asyncio.Event(), asyncio.Event()
    auth.passkeys = gated
    client = server.client()
    credential = await assertion(client, key)
    racing = asyncio.create_task(
        client.post("/passkeys/login", json={"credential": credential}, headers=await csrf(client))
    )
    await gated.entered.wait()
    if change == "disable":
        await auth.set_disabled(user.id, True, actor=admin.id)
    elif change == "revoke":
        await auth.revoke_all_sessions(user.id, actor=admin.id)
    elif change == "password":
        await auth.set_password(user.id, "another good password")
    else:
        await auth.set_role(user.id, "user", actor=admin.id)
    gated.gate.set()
    response = await racing
    if change == "demote":
        assert response.json()["user"]["role"] == "user"
        assert (await client.get("/admin")).status_code == 403
    else:
        assert (response.status_code, response.json()) == (401, INVALID)
        assert (await client.get("/me")).status_code == 401
