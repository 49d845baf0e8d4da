"""Attack 2: a registration whose ``response.transports`` is not a list is a 500.

``Passkeys.register`` verifies the credential inside a ``try`` that turns every parse error into
``PasskeyRejected`` (400), but reads the transports after it, in ``_transports``: that helper's
``try`` covers only the lookup (``.get("transports") or []``); the loop over the value runs
outside it, so ``"transports": 1`` (or ``true``, ``1.5``) raises ``TypeError`` from
``for t in found``, which no route handler catches: ``POST /passkeys/register`` answers 500
with a traceback in the log (COMMON.md: bad input is never a 500). The credential itself is
genuine, so verification passes and the bad field is reached. The fix: treat anything but a
list as no transports (``if not isinstance(found, list): return ()``) inside the guarded part.
"""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest

from tests.integration.test_api import csrf
from tests.integration.test_passkey_api import INVALID_PASSKEY, SITE
from tests.support.mfa_server import MfaServer, serve_mfa
from tests.support.webauthn import SoftAuthenticator


@pytest.fixture
async def server(tmp_path: Path) -> AsyncIterator[MfaServer]:
    """The server on SQLite."""
    async for running in serve_mfa(tmp_path):
        yield running


@pytest.mark.parametrize("transports", [1, True, 1.5])
async def test_a_non_list_transports_is_an_invalid_passkey(
    server: MfaServer, transports: Any
) -> None:
    """A genuine credential with a scalar ``transports``: 400 or 200, never a 500."""
    _, client = await server.signed_in("ann@example.com")
    options = await client.post("/passkeys/register/options", headers=await csrf(client))
    assert options.status_code == 200, options.text
    made = SoftAuthenticator().create(json.dumps(options.json()["publicKey"]), SITE)
    credential = json.loads(made) if isinstance(made, str) else made
    credential["response"]["transports"] = transports
    response = await client.post(
        "/passkeys/register",
        json={"credential": credential, "name": "Laptop"},
        headers=await csrf(client),
    )
    assert response.status_code in (200, 400), (response.status_code, response.text)
    if response.status_code == 400:
        assert response.json() == INVALID_PASSKEY
