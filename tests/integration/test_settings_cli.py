"""Settings, the production refusals, the first administrator, and the ``sessionauth`` CLI."""

from __future__ import annotations

import asyncio
import io
import logging
import stat
import time
from pathlib import Path
from typing import Any

import pytest
from typer.testing import CliRunner

from sessionauth.auth.authenticator import Authenticator
from sessionauth.auth.events import AuthEvent, UserCreated
from sessionauth.auth.passwords import PasswordHasher
from sessionauth.backends.locks import FileLock, NoLock
from sessionauth.backends.postgres import PostgresBackend
from sessionauth.cli import app as cli
from sessionauth.errors import ConfigurationError
from sessionauth.record import SessionRecord
from sessionauth.server.app import create_app
from sessionauth.server.bootstrap import ADMIN_EMAIL, bootstrap_admin
from sessionauth.server.purge import purge_once, run_purger
from sessionauth.server.secret_key import load_keyring
from sessionauth.server.settings import Settings, load_settings
from sessionauth.server.settings_findings import findings
from sessionauth.stores import MemoryStore, open_store
from sessionauth.stores.users import User, UserStore
from sessionauth.tokens import Keyring
from tests.support.backends import user_store

STRONG = "k" * 48
PASSWORD = "correct horse battery"


def production(tmp_path: Path, **overrides: Any) -> Settings:
    values: dict[str, Any] = {
        "env": "production",
        "secret": STRONG,
        "database_url": f"sqlite:///{tmp_path / 'users.db'}",
        "data_dir": tmp_path / "data",
    }
    values.update(overrides)
    return Settings(**values)


# -- settings -------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("overrides", "fix"),
    [
        ({"store_url": "memory://"}, "SESSIONAUTH_STORE_URL is memory://"),
        ({"secret": None}, "generate one with `sessionauth secret`"),
        ({"secret": "short-key"}, "weak (shorter than 32 bytes)"),
        ({"secret": f"{STRONG},old"}, "key #2 is weak"),
        ({"cookie_secure": False}, "set SESSIONAUTH_COOKIE_SECURE=true"),
        ({"allowed_origins": ("*",)}, "list each trusted origin exactly"),
        ({"allowed_origins": ("https://a.example/",)}, "no path, query or trailing slash"),
        ({"trusted_proxies": ("*",)}, "list your proxies' addresses"),
        ({"trusted_proxies": ("proxy.local",)}, "not an IP address or network"),
        ({"database_url": "sqlite:///:memory:"}, "accounts vanish on restart"),
        ({"metrics_token": "short"}, "SESSIONAUTH_METRICS_TOKEN is shorter than 16 bytes"),
    ],
)
def test_production_refuses_each_unsafe_setting_naming_the_fix(
    tmp_path: Path, overrides: dict[str, Any], fix: str
) -> None:
    """create_app() in production raises ConfigurationError whose message says the fix."""
    with pytest.raises(ConfigurationError, match="refusing to start in production") as caught:
        create_app(production(tmp_path, **overrides))
    assert fix in str(caught.value)


def test_production_with_safe_settings_has_no_findings(tmp_path: Path) -> None:
    """A safe production configuration starts, with a Secure __Host- cookie."""
    settings = production(tmp_path, allowed_origins=("https://app.example.com",))
    assert findings(settings) == []
    assert settings.secure_cookie is True
    create_app(settings)


def test_development_refuses_a_wildcard_origin_too(tmp_path: Path) -> None:
    """'*' with credentials is refused in development as well, not only reported."""
    settings = Settings(env="development", allowed_origins=("*",), data_dir=tmp_path)
    assert any("'*'" in item for item in findings(settings))
    with pytest.raises(ConfigurationError):
        create_app(settings)


def test_environment_variables_are_read(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """SESSIONAUTH_* variables fill the settings; lists are comma-separated."""
    monkeypatch.setenv("SESSIONAUTH_ENV", "production")
    monkeypatch.setenv("SESSIONAUTH_ALLOWED_ORIGINS", "https://a.example, https://b.example")
    monkeypatch.setenv("SESSIONAUTH_TRUSTED_PROXIES", "10.0.0.0/8")
    monkeypatch.setenv("SESSIONAUTH_DATABASE_URL", "sqlite:///x.db")
    monkeypatch.setenv("SESSIONAUTH_COOKIE_SECURE", "")
    settings = load_settings()
    assert settings.allowed_origins == ("https://a.example", "https://b.example")
    assert settings.trusted_proxies == ("10.0.0.0/8",)
    assert settings.session_store_url == "sqlite:///x.db"
    assert settings.secure_cookie is True
    monkeypatch.setenv("SESSIONAUTH_ENV", "staging")
    with pytest.raises(ConfigurationError, match="SESSIONAUTH_ENV"):
        load_settings()


def test_development_secret_is_generated_once_privately(tmp_path: Path) -> None:
    """Without SESSIONAUTH_SECRET, development makes one key, mode 0600, and reuses it."""
    settings = Settings(env="development", data_dir=tmp_path / "data")
    first = load_keyring(settings)
    path = tmp_path / "data" / "secret"
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    second = load_keyring(settings)
    assert second.unsign(first.sign("t" * 43)) == "t" * 43
    path.chmod(0o644)
    assert any("chmod 600" in item for item in findings(settings))


def test_production_never_generates_a_secret(tmp_path: Path) -> None:
    """Production without a secret refuses to build a keyring and writes no file."""
    with pytest.raises(ConfigurationError, match="SESSIONAUTH_SECRET is not set"):
        load_keyring(production(tmp_path, secret=None))
    assert not (tmp_path / "data").exists()


# -- the first administrator ----------------------------------------------------------------


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


# -- purge leader ---------------------------------------------------------------------------


async def test_only_one_process_purges_at_a_time(tmp_path: Path) -> None:
    """While one holder has the purge lock, another skips its sweep; afterwards it may sweep."""
    store = open_store(f"sqlite:///{tmp_path / 's.db'}")
    now = time.time()
    await store.create("old", SessionRecord(data={}, created=0, seen=0, issued=0, expires=1))
    await store.create(
        "live", SessionRecord(data={}, created=now, seen=now, issued=now, expires=now + 60)
    )
    first, second = FileLock(tmp_path / "purge.lock"), FileLock(tmp_path / "purge.lock")
    async with first.hold() as leader:
        assert leader
        assert await purge_once(store, None, second) is None
    assert await purge_once(store, None, second) == 1
    assert await store.load("live") is not None
    await store.aclose()


async def test_purger_sweeps_every_interval_until_cancelled(tmp_path: Path) -> None:
    """run_purger keeps sweeping (a record expiring later goes in a later round)."""
    clock = [time.time()]
    store = MemoryStore(clock=lambda: clock[0])
    await store.create("a", SessionRecord(data={}, created=0, seen=0, issued=0, expires=1))
    task = asyncio.create_task(run_purger(store, None, NoLock(), interval=0.01))
    try:
        for _ in range(100):
            await asyncio.sleep(0.01)
            if not len(store):
                break
        assert len(store) == 0
        record = SessionRecord(data={}, created=0, seen=0, issued=0, expires=clock[0] + 1)
        await store.create("b", record)
        clock[0] += 2
        for _ in range(100):
            await asyncio.sleep(0.01)
            if not len(store):
                break
        assert len(store) == 0
    finally:
        task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await task


@pytest.mark.postgres
async def test_postgres_purge_lock_admits_one_holder(postgres_dsn: str) -> None:
    """pg_try_advisory_xact_lock: a second holder is refused until the first commits."""
    async with PostgresBackend(postgres_dsn) as one, PostgresBackend(postgres_dsn) as two:
        first, second = one.purge_lock(Path()), two.purge_lock(Path())
        async with first.hold() as leader:
            assert leader
            async with second.hold() as follower:
                assert not follower
        async with second.hold() as later:
            assert later


# -- the CLI --------------------------------------------------------------------------------


@pytest.fixture
def env(tmp_path: Path) -> dict[str, str]:
    return {
        "SESSIONAUTH_ENV": "development",
        "SESSIONAUTH_DATABASE_URL": f"sqlite:///{tmp_path / 'cli.db'}",
        "SESSIONAUTH_DATA_DIR": str(tmp_path / "data"),
        "SESSIONAUTH_SECRET": STRONG,
    }


def invoke(env: dict[str, str], *args: str, input: str | None = None) -> Any:
    return CliRunner().invoke(cli, list(args), env=env, input=input)


def user_named(env: dict[str, str], email: str) -> User | None:
    async def find() -> User | None:
        async with user_store(env["SESSIONAUTH_DATABASE_URL"]) as users:
            return await users.get_by_email(email)

    return asyncio.run(find())


def add_session(env: dict[str, str], user: User, sid: str) -> None:
    async def create() -> None:
        now = time.time()
        store = open_store(env["SESSIONAUTH_DATABASE_URL"])
        record = SessionRecord(
            data={},
            created=now,
            seen=now,
            issued=now,
            expires=now + 3600,
            user_id=str(user.id),
            meta={"ip": "203.0.113.9", "ua": "curl/8"},
        )
        await store.create(sid, record)
        await store.aclose()

    asyncio.run(create())


def live_sessions(env: dict[str, str], user: User) -> list[str]:
    async def listing() -> list[str]:
        store = open_store(env["SESSIONAUTH_DATABASE_URL"])
        try:
            page = await store.list_user(str(user.id))
            return [handle for handle, _ in page.sessions]
        finally:
            await store.aclose()

    return asyncio.run(listing())


def test_check_exit_codes_and_output(env: dict[str, str]) -> None:
    """`sessionauth check`: 0 and "no findings" when safe; 1 with each finding otherwise."""
    ok = invoke(env, "check")
    assert (ok.exit_code, ok.stdout.strip()) == (0, "no findings")
    unsafe = {**env, "SESSIONAUTH_ENV": "production", "SESSIONAUTH_STORE_URL": "memory://"}
    unsafe["SESSIONAUTH_COOKIE_SECURE"] = "false"
    bad = invoke(unsafe, "check")
    assert bad.exit_code == 1
    lines = bad.stdout.strip().splitlines()
    assert len(lines) == 2
    assert "memory://" in lines[0]
    assert "SESSIONAUTH_COOKIE_SECURE" in lines[1]
    invalid = invoke({**env, "SESSIONAUTH_ENV": "staging"}, "check")
    assert invalid.exit_code == 1
    assert "SESSIONAUTH_ENV" in invalid.stderr
    assert "Traceback" not in invalid.output


def test_secret_prints_a_strong_key(env: dict[str, str]) -> None:
    """`sessionauth secret` prints a fresh key the keyring accepts."""
    first, second = invoke(env, "secret"), invoke(env, "secret")
    assert first.exit_code == 0
    assert first.stdout != second.stdout
    Keyring([first.stdout.strip()])


def test_users_create_list_and_refusals(env: dict[str, str]) -> None:
    """`users create` reads the password from stdin or a twice-typed prompt; errors exit 1/2."""
    made = invoke(env, "users", "create", "Ann@Example.com", "--password-stdin", input=PASSWORD)
    assert made.exit_code == 0, made.output
    assert "ann@example.com (user)" in made.stdout
    typed_twice = f"{PASSWORD}\n{PASSWORD}\n"
    prompted = invoke(
        env, "users", "create", "bob@example.com", "--role", "admin", input=typed_twice
    )
    assert prompted.exit_code == 0, prompted.output
    listing = invoke(env, "users", "list").stdout
    assert "ann@example.com\tuser\tactive" in listing
    assert "bob@example.com\tadmin\tactive" in listing
    duplicate = invoke(
        env, "users", "create", "ann@example.com", "--password-stdin", input=PASSWORD
    )
    assert duplicate.exit_code == 1
    assert "already exists" in duplicate.stderr
    short = invoke(env, "users", "create", "c@example.com", "--password-stdin", input="short")
    assert short.exit_code == 1
    assert "shorter than 8" in short.stderr
    bad_role = invoke(
        env, "users", "create", "d@example.com", "--role", "root", "--password-stdin", input="x"
    )
    assert bad_role.exit_code == 1
    assert "Unknown role 'root': use one of admin, user" in bad_role.stderr
    assert "Traceback" not in duplicate.output + short.output + bad_role.output


def test_users_role_password_disable_delete(env: dict[str, str]) -> None:
    """set-role, set-password (revokes sessions), disable and delete act on the account."""
    invoke(env, "users", "create", "ann@example.com", "--password-stdin", input=PASSWORD)
    ann = user_named(env, "ann@example.com")
    assert ann is not None
    assert invoke(env, "users", "set-role", "ann@example.com", "admin").exit_code == 0
    assert user_named(env, "ann@example.com").role == "admin"  # type: ignore[union-attr]
    add_session(env, ann, "s1")
    new_password = "another long secret\n"
    reset = invoke(
        env, "users", "set-password", "ann@example.com", "--password-stdin", input=new_password
    )
    assert reset.exit_code == 0
    assert "1 sessions revoked" in reset.stdout
    assert live_sessions(env, ann) == []
    add_session(env, ann, "s2")
    assert invoke(env, "users", "disable", "ann@example.com", "--yes", "--force").exit_code == 0
    assert user_named(env, "ann@example.com").disabled  # type: ignore[union-attr]
    assert live_sessions(env, ann) == []
    declined = invoke(env, "users", "delete", "ann@example.com", input="n\n")
    assert declined.exit_code == 1
    assert user_named(env, "ann@example.com") is not None
    assert invoke(env, "users", "delete", "ann@example.com", "--yes").exit_code == 0
    assert user_named(env, "ann@example.com") is None
    missing = invoke(env, "users", "set-role", "ann@example.com", "user")
    assert missing.exit_code == 1
    assert "no user with email" in missing.stderr


def test_the_last_admin_needs_force_and_roles_come_from_the_setting(
    env: dict[str, str],
) -> None:
    """Demoting, disabling or deleting the last enabled admin exits 1 unless --force is given."""
    invoke(env, "users", "create", "ann@example.com", "--password-stdin", input=PASSWORD)
    assert invoke(env, "users", "set-role", "ann@example.com", "admin").exit_code == 0
    for command in (
        ["set-role", "ann@example.com", "user"],
        ["disable", "ann@example.com", "--yes"],
    ):
        refused = invoke(env, "users", *command)
        assert refused.exit_code == 1, refused.output
        assert "error: This would leave no enabled administrator" in refused.stderr
    refused = invoke(env, "users", "delete", "ann@example.com", "--yes")
    assert refused.exit_code == 1
    assert user_named(env, "ann@example.com").role == "admin"  # type: ignore[union-attr]
    unknown = invoke(env, "users", "set-role", "ann@example.com", "superuser")
    assert unknown.exit_code == 1
    assert "Unknown role 'superuser'" in unknown.stderr
    forced = invoke(env, "users", "set-role", "ann@example.com", "user", "--force")
    assert forced.exit_code == 0, forced.output
    assert user_named(env, "ann@example.com").role == "user"  # type: ignore[union-attr]
    custom = {**env, "SESSIONAUTH_ROLES": "admin,user,superuser"}
    assert invoke(custom, "users", "set-role", "ann@example.com", "superuser").exit_code == 0


def test_check_reports_users_whose_role_is_not_configured(env: dict[str, str]) -> None:
    """`check` lists each account whose role is outside SESSIONAUTH_ROLES, with the fix."""
    custom = {**env, "SESSIONAUTH_ROLES": "admin,user,editor"}
    made = invoke(
        custom,
        "users",
        "create",
        "ed@example.com",
        "--role",
        "editor",
        "--password-stdin",
        input=PASSWORD,
    )
    assert made.exit_code == 0, made.output
    clean = invoke(custom, "check")
    assert "ed@example.com" not in clean.stdout
    found = invoke(env, "check")
    assert found.exit_code == 1
    assert "user ed@example.com has the role 'editor', which is not in SESSIONAUTH_ROLES" in (
        found.stdout
    )


def test_sessions_list_and_revoke(env: dict[str, str]) -> None:
    """`sessions list` shows signed-in sessions; revoke by handle, --user or --all."""
    for email in ("ann@example.com", "bob@example.com"):
        invoke(env, "users", "create", email, "--password-stdin", input=PASSWORD)
    ann, bob = user_named(env, "ann@example.com"), user_named(env, "bob@example.com")
    assert ann is not None
    assert bob is not None
    for sid in ("a1", "a2"):
        add_session(env, ann, sid)
    add_session(env, bob, "b1")
    listing = invoke(env, "sessions", "list").stdout.splitlines()
    assert sorted(line.split("\t")[0] for line in listing) == ["a1", "a2", "b1"]
    assert "203.0.113.9" in listing[0]
    only_bob = invoke(env, "sessions", "list", "--user", "bob@example.com").stdout
    assert only_bob.startswith("b1\tbob@example.com")
    one = invoke(env, "sessions", "revoke", "a1", "--yes")
    assert (one.exit_code, one.stdout.strip()) == (0, "revoked 1 sessions")
    gone = invoke(env, "sessions", "revoke", "a1", "--yes")
    assert gone.exit_code == 1
    assert "no live session" in gone.stderr
    assert invoke(env, "sessions", "revoke", "--user", "ann@example.com", "--yes").exit_code == 0
    assert live_sessions(env, ann) == []
    assert live_sessions(env, bob) == ["b1"]
    assert invoke(env, "sessions", "revoke", "--all", input="n\n").exit_code == 1
    assert (
        invoke(env, "sessions", "revoke", "--all", "--yes").stdout.strip() == "revoked 1 sessions"
    )
    assert invoke(env, "sessions", "list").stdout.strip() == "no sessions"
    assert invoke(env, "sessions", "revoke", "--yes").exit_code == 2


def security_events(caplog: pytest.LogCaptureFixture) -> list[dict[str, Any]]:
    """The fields of each event the Authenticator published (its one log renderer's extra)."""
    return [
        {
            key: record.__dict__[key]
            for key in ("event", "user", "actor", "role", "count", "why")
            if key in record.__dict__
        }
        for record in caplog.records
        if record.name == "sessionauth.security" and "event" in record.__dict__
    ]


def test_cli_account_commands_go_through_the_authenticator(
    env: dict[str, str], caplog: pytest.LogCaptureFixture
) -> None:
    """users create, set-role, delete and sessions revoke HANDLE each publish their event."""
    caplog.set_level(logging.INFO, logger="sessionauth.security")
    made = invoke(env, "users", "create", "ann@example.com", "--password-stdin", input=PASSWORD)
    assert made.exit_code == 0, made.output
    ann = user_named(env, "ann@example.com")
    assert ann is not None
    assert security_events(caplog) == [
        {"event": "user_created", "user": ann.id, "actor": None, "role": "user"}
    ]
    caplog.clear()
    add_session(env, ann, "a1")
    add_session(env, ann, "a2")
    assert invoke(env, "sessions", "revoke", "a1", "--yes").exit_code == 0
    assert security_events(caplog) == [{"event": "session_revoked", "user": ann.id, "actor": None}]
    assert live_sessions(env, ann) == ["a2"]
    caplog.clear()
    assert invoke(env, "users", "set-role", "ann@example.com", "admin").exit_code == 0
    assert invoke(env, "users", "delete", "ann@example.com", "--yes", "--force").exit_code == 0
    assert security_events(caplog) == [
        {"event": "role_changed", "user": ann.id, "actor": None, "role": "admin"},
        {"event": "user_deleted", "user": ann.id, "actor": None},
        {"event": "sessions_revoked", "user": ann.id, "actor": None, "count": 1, "why": "deleted"},
    ]


def test_purge_expired(env: dict[str, str]) -> None:
    """`purge-expired` deletes expired records and says how many."""

    async def seed() -> None:
        store = open_store(env["SESSIONAUTH_DATABASE_URL"])
        await store.create("old", SessionRecord(data={}, created=0, seen=0, issued=0, expires=1))
        await store.aclose()

    asyncio.run(seed())
    result = invoke(env, "purge-expired")
    assert (result.exit_code, result.stdout.strip()) == (0, "purged 1 expired sessions")
    assert invoke(env, "purge-expired").stdout.strip() == "purged 0 expired sessions"


def test_serve_refuses_an_unsafe_production_configuration(env: dict[str, str]) -> None:
    """`serve` in production with findings exits 1 with the list, before starting uvicorn."""
    unsafe = {**env, "SESSIONAUTH_ENV": "production", "SESSIONAUTH_SECRET": "weak"}
    result = invoke(unsafe, "serve", "--port", "1")
    assert result.exit_code == 1
    assert "refusing to start in production" in result.stderr
    assert "sessionauth secret" in result.stderr
