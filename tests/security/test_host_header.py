"""A client's Host header never becomes a redirect target.

Starlette's router answers a path with a trailing slash by redirecting to the other spelling,
an absolute URL built from the request's Host header: ``GET /account/`` with
``Host: evil.example`` answered 307 to ``http://evil.example/account``, which a cache in front
of the server could keep and hand to everyone. The server's routes have one spelling each, so
the other is a plain 404, and no answer names a host the client chose.
"""

from __future__ import annotations

import pytest

from tests.support.mfa_server import MfaServer, mfa_server_fixture

EVIL = "evil.example"
SLASHED = ["/account/", "/login/", "/admin/users/", "/me/", "/dashboard/", "/passkeys/"]


server = mfa_server_fixture()


@pytest.mark.parametrize("path", SLASHED)
async def test_a_trailing_slash_is_a_404_not_a_redirect_to_the_host_sent(
    server: MfaServer, path: str
) -> None:
    """The other spelling of a route is 404, with no Location, whatever the Host."""
    response = await server.client().get(path, headers={"host": EVIL})
    assert response.status_code == 404
    assert "location" not in response.headers
    assert EVIL not in response.text
