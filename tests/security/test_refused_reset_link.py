"""A reset link refused because the owner's change landed first acts as no reset (review 6).

A mailed reset link checked before the owner's password change writes only over the hash it
was checked against, and is refused ("Invalid or expired link", 400) when the owner's change
landed first. It used to run the refused write inside ``_rotating``: both rotations of the
principal still happened, so every session of the account ended, the one the owner's change
had just kept included, and ``SessionsRevoked(why="password-reset")`` was published for a
reset never made. Now the stored hash is checked before anything changes.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest

from tests.integration.test_api import PASSWORD, csrf
from tests.integration.test_lifecycle_api import Site, link_token, running_site
from tests.support.smtp_server import SMTPServer, smtp_server

OWNER_PASSWORD = "the owner's brand new passphrase"
OTHER_PASSWORD = "whoever clicked the link's choice"


@pytest.fixture
async def site(tmp_path: Path) -> AsyncIterator[Site]:
    """The reference server with its mail going to a real SMTP server."""
    mailbox: SMTPServer
    with smtp_server() as mailbox:
        async with running_site(tmp_path, mailbox) as made:
            yield made


async def test_a_refused_reset_link_does_not_sign_the_owner_out(
    site: Site, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The owner's change wins (200, session kept); the late link is refused (400).

    Nothing was reset, the page says the link is invalid, yet the owner's session, kept by
    their own change a moment earlier, is gone (GET /me 401).
    """
    await site.add_user("me@example.com")
    owner = await site.signed_in("me@example.com")
    await site.client().post("/password/forgot", json={"email": "me@example.com"})
    token = link_token(await site.mail_to("me@example.com"), "/password/reset")

    tokens = site.app.state.lifecycle.tokens
    consume = tokens.consume
    changed: list[int] = []

    async def consume_then_the_owner_changes(raw: object, purpose: str, **kw: Any) -> Any:
        claim = await consume(raw, purpose, **kw)
        answer = await owner.post(
            "/password",
            json={"current_password": PASSWORD, "new_password": OWNER_PASSWORD},
            headers=await csrf(owner),
        )
        changed.append(answer.status_code)
        changed.append((await owner.get("/me")).status_code)
        return claim

    monkeypatch.setattr(tokens, "consume", consume_then_the_owner_changes)
    reset = await site.client().post(
        "/password/reset", json={"token": token, "password": OTHER_PASSWORD}
    )
    monkeypatch.undo()

    assert changed == [200, 200], changed  # the change was made and kept the owner's session
    assert reset.status_code == 400, reset.text  # the link is refused: nothing was reset
    me = await owner.get("/me")
    assert me.status_code == 200, (
        f"a reset answered {reset.status_code} {reset.json()} (not made) ended the owner's "
        f"session: GET /me {me.status_code}"
    )
