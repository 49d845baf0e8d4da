"""The first administrator: made once on an empty development database, never in production."""

from __future__ import annotations

import io
from pathlib import Path

from sessionauth.auth.authenticator import Authenticator
from sessionauth.auth.events import AuthEvent, UserCreated
from sessionauth.auth.passwords import PasswordHasher
from sessionauth.server.app import create_app
from sessionauth.server.bootstrap import ADMIN_EMAIL, bootstrap_admin
from sessionauth.stores import MemoryStore
from sessionauth.stores.users import UserStore
from tests.support.apps import production
from tests.support.backends import user_store


def authenticator(users: UserStore, events: list[AuthEvent]) -> Authenticator:
    """An Authenticator over ``users`` and a memory session store, recording its events."""
    return Authenticator(
        users=users,
        sessions=MemoryStore(),
        hasher=PasswordHasher.for_tests(),
        throttle=None,
        hooks=[events.append],
    )


async def test_empty_development_database_gets_exactly_one_admin(tmp_path: Path) -> None:
    """bootstrap_admin creates admin@localhost once, through the Authenticator, and prints once."""
    events: list[AuthEvent] = []
    async with user_store(f"sqlite:///{tmp_path / 'users.db'}") as users:
        auth = authenticator(users, events)
        out = io.StringIO()
        created = await bootstrap_admin(auth, out=out)
        assert created is not None
        user, password = created
        assert (user.email, user.role) == (ADMIN_EMAIL, "admin")
        assert out.getvalue().count(password) == 1
        assert events == [UserCreated(user_id=user.id, role="admin", actor=None)]
        again = io.StringIO()
        assert await bootstrap_admin(auth, out=again) is None
        assert again.getvalue() == ""
        assert [u.email for u in await users.list()] == [ADMIN_EMAIL]
        assert (await auth.hasher.verify(password, user.password_hash))[0]
        assert len(events) == 1


async def test_bootstrap_leaves_a_database_with_accounts_alone(tmp_path: Path) -> None:
    """A database that has any account gets no administrator, prints nothing, publishes nothing."""
    events: list[AuthEvent] = []
    async with user_store(f"sqlite:///{tmp_path / 'users.db'}") as users:
        await users.create("someone@example.com", "x")
        out = io.StringIO()
        assert await bootstrap_admin(authenticator(users, events), out=out) is None
        assert out.getvalue() == ""
        assert events == []


async def test_production_start_creates_no_account(tmp_path: Path) -> None:
    """The production lifespan never creates a default account."""
    app = create_app(production(tmp_path), hasher=PasswordHasher.for_tests())
    async with app.router.lifespan_context(app):
        assert await app.state.authenticator.users.list() == []
