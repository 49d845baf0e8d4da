"""The ``sessionauth users`` and ``sessionauth sessions`` commands, through the Authenticator."""

from __future__ import annotations

import asyncio
import logging
from pathlib import Path
from typing import Any

import pyotp
import pytest

from sessionauth.auth.factors import SecondFactors
from sessionauth.auth.throttle import LoginThrottle
from sessionauth.auth.totp import TotpCipher
from sessionauth.backends import open_backend
from sessionauth.cli_accounts import _USERS_AT_ONCE
from sessionauth.errors import TooManyAttempts
from sessionauth.stores.users import User
from sessionauth.tokens import Keyring
from tests.support.cli import PASSWORD, add_session, created_user, invoke, live_sessions, user_named


def test_users_create_list_and_refusals(env: dict[str, str]) -> None:
    """`users create` reads the password from stdin or a twice-typed prompt; errors exit 1/2."""
    database = Path(env["SESSIONAUTH_DATABASE_URL"].removeprefix("sqlite:///"))
    elsewhere = invoke(env, "users", "list")  # as run from another directory than the server's
    assert (elsewhere.exit_code, elsewhere.stdout) == (1, "")
    assert f"no accounts database at {database}: run the command in the server's" in " ".join(
        elsewhere.stderr.split()
    )
    assert not database.exists()
    made = invoke(env, "users", "create", "Ann@Example.com", "--password-stdin", input=PASSWORD)
    assert made.exit_code == 0, made.output
    assert made.stdout.splitlines() == [
        f"created the accounts database {database}",
        "created user 1 ann@example.com (user)",
    ]
    typed_twice = f"{PASSWORD}\n{PASSWORD}\n"
    prompted = invoke(
        env, "users", "create", "bob@example.com", "--role", "admin", input=typed_twice
    )
    assert prompted.exit_code == 0, prompted.output
    header, *rows = invoke(env, "users", "list").stdout.splitlines()
    assert header.split("\t") == ["ID", "EMAIL", "ROLE", "STATUS", "CREATED"]
    assert [row.split("\t")[1:4] for row in rows] == [
        ["ann@example.com", "user", "active"],
        ["bob@example.com", "admin", "active"],
    ]
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
    ann = created_user(env, "ann@example.com")
    assert invoke(env, "users", "set-role", "ann@example.com", "admin").exit_code == 0
    assert user_named(env, "ann@example.com").role == "admin"  # type: ignore[union-attr]
    add_session(env, ann, "s1")
    new_password = "another long secret\n"
    reset = invoke(
        env, "users", "set-password", "ann@example.com", "--password-stdin", input=new_password
    )
    assert reset.exit_code == 0
    assert "; 1 session revoked" in reset.stdout
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
        assert (
            "error: This would leave no enabled administrator (--force overrides it)"
            in refused.stderr
        )
    refused = invoke(env, "users", "delete", "ann@example.com", "--yes")
    assert refused.exit_code == 1
    assert "(--force overrides it)" in refused.stderr
    assert user_named(env, "ann@example.com").role == "admin"  # type: ignore[union-attr]
    unknown = invoke(env, "users", "set-role", "ann@example.com", "superuser")
    assert unknown.exit_code == 1
    assert "Unknown role 'superuser'" in unknown.stderr
    forced = invoke(env, "users", "set-role", "ann@example.com", "user", "--force")
    assert forced.exit_code == 0, forced.output
    assert user_named(env, "ann@example.com").role == "user"  # type: ignore[union-attr]
    custom = {**env, "SESSIONAUTH_ROLES": "admin,user,superuser"}
    assert invoke(custom, "users", "set-role", "ann@example.com", "superuser").exit_code == 0


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
    header, *rows = invoke(env, "sessions", "list").stdout.splitlines()
    assert header.startswith("HANDLE\t")
    assert sorted(row.split("\t")[0] for row in rows) == ["a1", "a2", "b1"]
    assert "203.0.113.9" in rows[0]
    only_bob = invoke(env, "sessions", "list", "--user", "bob@example.com").stdout.splitlines()
    assert only_bob[1].startswith("b1\tbob@example.com")
    one = invoke(env, "sessions", "revoke", "a1", "--yes")
    assert (one.exit_code, one.stdout.strip()) == (0, "revoked 1 session")
    gone = invoke(env, "sessions", "revoke", "a1", "--yes")
    assert gone.exit_code == 1
    assert "no live session" in gone.stderr
    assert invoke(env, "sessions", "revoke", "--user", "ann@example.com", "--yes").exit_code == 0
    assert live_sessions(env, ann) == []
    assert live_sessions(env, bob) == ["b1"]
    assert invoke(env, "sessions", "revoke", "--all", input="n\n").exit_code == 1
    assert invoke(env, "sessions", "revoke", "--all", "--yes").stdout.strip() == "revoked 1 session"
    assert invoke(env, "sessions", "list").stdout.strip() == "no signed-in sessions"
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


def test_sessions_list_names_its_columns_in_a_header_over_its_rows(env: dict[str, str]) -> None:
    """A header names each tab-separated column; a user without sessions is told so in one line."""
    for email in ("ann@example.com", "bob@example.com"):
        invoke(env, "users", "create", email, "--password-stdin", input=PASSWORD)
    ann = user_named(env, "ann@example.com")
    assert ann is not None
    add_session(env, ann, "a1")
    listed = invoke(env, "sessions", "list", "--user", "ann@example.com")
    assert listed.exit_code == 0, listed.output
    header, *rows = [line.split("\t") for line in listed.stdout.splitlines()]
    assert header == ["HANDLE", "USER", "CREATED", "LAST SEEN", "ADDRESS", "BROWSER"]
    assert len(rows) == 1
    row = dict(zip(header, rows[0], strict=True))
    assert row["CREATED"].endswith(" UTC")
    assert row["LAST SEEN"].endswith(" UTC")
    del row["CREATED"], row["LAST SEEN"]
    assert row == {
        "HANDLE": "a1",
        "USER": "ann@example.com",
        "ADDRESS": "203.0.113.9",
        "BROWSER": "curl/8",
    }
    nothing = invoke(env, "sessions", "list", "--user", "bob@example.com")
    assert (nothing.exit_code, nothing.stdout) == (0, "bob@example.com has no signed-in sessions\n")
    help_text = " ".join(invoke(env, "sessions", "list", "--help").stdout.split())  # unwrapped
    assert all(column in help_text for column in header)


def test_sessions_list_escapes_what_a_client_sent_that_is_not_printable(
    env: dict[str, str],
) -> None:
    """A tab, a newline or a C1 control (a terminal's CSI) is escaped, and so is a backslash."""
    ann = created_user(env, "ann@example.com")
    add_session(env, ann, "a1", user_agent="x\ty\nz\x9b31m\x1b[2J\u2028é")
    add_session(env, ann, "a2", user_agent="x\\ty")  # a backslash and a t: not a tab
    listed = invoke(env, "sessions", "list", "--user", "ann@example.com")
    assert listed.exit_code == 0, listed.output
    _, *rows = listed.stdout.splitlines()
    browsers = {row.split("\t")[0]: row.split("\t")[-1] for row in rows}
    assert browsers == {"a1": "x\\ty\\nz\\x9b31m\\x1b[2J\\u2028é", "a2": "x\\\\ty"}


def test_counts_are_singular_for_one_and_plural_otherwise(env: dict[str, str]) -> None:
    """`sessions revoke` and `users delete` print "0 sessions", "1 session", "2 sessions"."""
    ann = created_user(env, "ann@example.com")
    said = []
    for sid in ("", "a1"):  # none, then one
        if sid:
            add_session(env, ann, sid)
        revoked = invoke(env, "sessions", "revoke", "--user", "ann@example.com", "--yes")
        assert revoked.exit_code == 0, revoked.output
        said.append(revoked.stdout.strip())
    add_session(env, ann, "a2")
    add_session(env, ann, "a3")
    deleted = invoke(env, "users", "delete", "ann@example.com", "--yes")
    assert deleted.exit_code == 0, deleted.output
    said.append(deleted.stdout.strip())
    assert said == [
        "revoked 0 sessions",
        "revoked 1 session",
        "deleted ann@example.com; 2 sessions revoked",
    ]


def _enable_totp(env: dict[str, str], user: User) -> None:
    """Enable TOTP for ``user`` in the CLI's database, under the CLI's secret key."""
    backend = open_backend(env["SESSIONAUTH_DATABASE_URL"])
    factors = SecondFactors(
        store=backend.factor_store(),
        cipher=TotpCipher.from_keyring(Keyring([env["SESSIONAUTH_SECRET"]])),
    )

    async def enable() -> None:
        try:
            setup = await factors.start_totp(str(user.id), user.email)
            await factors.confirm_totp(str(user.id), pyotp.TOTP(setup.secret).now())
        finally:
            await backend.aclose()

    asyncio.run(enable())


def _methods(env: dict[str, str], user: User) -> list[str]:
    backend = open_backend(env["SESSIONAUTH_DATABASE_URL"])

    async def read() -> list[str]:
        try:
            store = backend.factor_store()
            totp = await store.get_totp(str(user.id))
            codes = await store.count_recovery_codes(str(user.id))
            return (["totp"] if totp is not None else []) + (["recovery"] if codes else [])
        finally:
            await backend.aclose()

    return asyncio.run(read())


def test_users_reset_mfa_asks_then_removes_the_factors_and_signs_out(
    env: dict[str, str],
) -> None:
    """`users reset-mfa` asks (or takes --yes), removes TOTP and the codes, ends the sessions."""
    ann = created_user(env, "ann@example.com")
    _enable_totp(env, ann)
    add_session(env, ann, "s1")
    assert _methods(env, ann) == ["totp", "recovery"]
    declined = invoke(env, "users", "reset-mfa", "ann@example.com", input="n\n")
    assert declined.exit_code == 1
    assert _methods(env, ann) == ["totp", "recovery"]
    assert live_sessions(env, ann) == ["s1"]
    done = invoke(env, "users", "reset-mfa", "ann@example.com", "--yes")
    assert done.exit_code == 0, done.output
    assert "second factors of ann@example.com removed; 1 session revoked" in done.stdout
    assert _methods(env, ann) == []
    assert live_sessions(env, ann) == []
    unknown = invoke(env, "users", "reset-mfa", "nobody@example.com", "--yes")
    assert unknown.exit_code == 1
    assert "no user with email" in unknown.stderr


def _sealed(env: dict[str, str], user: User) -> bytes:
    """The TOTP secret of ``user`` as the CLI's database holds it (encrypted)."""
    backend = open_backend(env["SESSIONAUTH_DATABASE_URL"])

    async def read() -> bytes:
        try:
            totp = await backend.factor_store().get_totp(str(user.id))
            assert totp is not None
            return totp.secret
        finally:
            await backend.aclose()

    return asyncio.run(read())


def test_users_reseal_mfa_moves_the_secrets_so_the_old_key_can_go(env: dict[str, str]) -> None:
    """After prepending a key, `users reseal-mfa` moves every secret; the old key can leave."""
    new = "n" * 48
    for email in ("ann@example.com", "bob@example.com"):
        invoke(env, "users", "create", email, "--password-stdin", input=PASSWORD)
    ann, bob = user_named(env, "ann@example.com"), user_named(env, "bob@example.com")
    assert ann is not None
    assert bob is not None
    _enable_totp(env, ann)
    _enable_totp(env, bob)
    rotated = {**env, "SESSIONAUTH_SECRET": f"{new},{env['SESSIONAUTH_SECRET']}"}

    moved = invoke(rotated, "users", "reseal-mfa")
    assert moved.exit_code == 0, moved.output
    assert "2 TOTP secrets moved to the newest key; 0 were on it" in moved.stdout
    only_new = TotpCipher.from_keyring(Keyring([new]))
    for user in (ann, bob):
        assert only_new.decrypt(str(user.id), _sealed(env, user)) is not None

    dropped = {**env, "SESSIONAUTH_SECRET": new}
    again = invoke(dropped, "users", "reseal-mfa")
    assert again.exit_code == 0, again.output
    assert "0 TOTP secrets moved to the newest key; 2 were on it" in again.stdout


def test_users_reseal_mfa_fails_naming_secrets_no_key_opens(env: dict[str, str]) -> None:
    """A secret under a key already dropped: counted, left alone, and the command exits 1."""
    ann = created_user(env, "ann@example.com")
    _enable_totp(env, ann)
    before = _sealed(env, ann)
    dropped = {**env, "SESSIONAUTH_SECRET": "n" * 48}
    failed = invoke(dropped, "users", "reseal-mfa")
    assert failed.exit_code == 1
    assert "1 enabled TOTP secret is sealed under no key of SESSIONAUTH_SECRET" in failed.stderr
    assert "ann@example.com" in failed.stderr
    assert _sealed(env, ann) == before


def test_each_event_goes_to_the_commands_stderr_and_no_handler_stays(env: dict[str, str]) -> None:
    """In process too: set-role's event on stderr, its outcome on stdout, no handler left after."""
    ann = created_user(env, "ann@example.com")
    before = {name: logging.getLogger(name).handlers[:] for name in ("sessionauth", "root")}
    changed = invoke(env, "users", "set-role", "ann@example.com", "admin")
    assert changed.exit_code == 0, changed.output
    assert changed.stdout == "ann@example.com is now admin\n"
    assert (
        changed.stderr
        == f"WARNING:  role_changed user={ann.id} address=None actor=None role=admin\n"
    )
    assert logging.getLogger("sessionauth.security").handlers == []
    assert {name: logging.getLogger(name).handlers for name in before} == before


def test_users_unlock_lets_a_throttled_account_sign_in_at_once(env: dict[str, str]) -> None:
    """Five wrong guesses lock an account for the window; `users unlock` ends that, logged.

    The address the guesses came from keeps its count: unlocking buys a guesser nothing.
    """
    ann = created_user(env, "ann@example.com")

    async def guess(times: int) -> list[bool]:
        async with open_backend(env["SESSIONAUTH_DATABASE_URL"]) as backend:
            throttle = LoginThrottle(backend.attempt_counter())
            taken = []
            for _ in range(times):
                try:
                    await throttle.reserve("Ann@Example.com", "192.0.2.7")
                except TooManyAttempts:
                    taken.append(False)
                else:
                    taken.append(True)
            return taken

    async def address_count() -> int:
        async with open_backend(env["SESSIONAUTH_DATABASE_URL"]) as backend:
            count, _ = await backend.attempt_counter().count("ip:192.0.2.7")
            return count

    assert asyncio.run(guess(6)) == [True] * 5 + [False]
    unlocked = invoke(env, "users", "unlock", "ann@example.com")
    assert unlocked.exit_code == 0, unlocked.output
    assert "ann@example.com may sign in again" in unlocked.stdout
    assert "account_unlocked" in unlocked.stderr
    assert f"user={ann.id}" in unlocked.stderr
    assert asyncio.run(address_count()) == 5
    assert asyncio.run(guess(1)) == [True]
    missing = invoke(env, "users", "unlock", "bob@example.com")
    assert missing.exit_code == 1
    assert "no user with email" in missing.stderr


def test_sessions_of_more_users_than_are_handled_at_once_are_all_listed_and_revoked(
    env: dict[str, str],
) -> None:
    """`sessions list` and `revoke --all` handle users concurrently, missing and doubling none."""
    count = 2 * _USERS_AT_ONCE + 5
    for n in range(count):
        invoke(env, "users", "create", f"u{n}@example.com", "--password-stdin", input=PASSWORD)
        user = user_named(env, f"u{n}@example.com")
        assert user is not None
        add_session(env, user, f"s{n}")
    _, *rows = invoke(env, "sessions", "list").stdout.splitlines()
    # One line per session under the header, in the users' order (each user's together).
    assert [row.split("\t")[:2] for row in rows] == [
        [f"s{n}", f"u{n}@example.com"] for n in range(count)
    ]
    revoked = invoke(env, "sessions", "revoke", "--all", "--yes")
    assert (revoked.exit_code, revoked.stdout.strip()) == (0, f"revoked {count} sessions")
    assert invoke(env, "sessions", "list").stdout.strip() == "no signed-in sessions"


@pytest.mark.parametrize("command", ["delete", "disable"])
def test_refusals_come_before_the_question_not_after_a_yes(
    env: dict[str, str], command: str
) -> None:
    """A missing account or the last admin is refused before the operator is asked to confirm."""
    invoke(env, "users", "create", "ann@example.com", "--password-stdin", input=PASSWORD)
    assert invoke(env, "users", "set-role", "ann@example.com", "admin").exit_code == 0
    last_admin = invoke(env, "users", command, "ann@example.com", input="y\n")
    assert last_admin.exit_code == 1
    assert "(--force overrides it)" in last_admin.stderr
    assert "sign them out everywhere?" not in last_admin.output
    missing = invoke(env, "users", command, "nobody@example.com", input="y\n")
    assert missing.exit_code == 1
    assert "no user with email" in missing.stderr
    assert "sign them out everywhere?" not in missing.output
    forced = invoke(env, "users", command, "ann@example.com", "--force", input="y\n")
    assert forced.exit_code == 0, forced.output
    assert "sign them out everywhere?" in forced.output  # asked, once the rules allow it
