"""The ``sessionauth`` commands around the server: `check`, `secret` and `serve`."""

from __future__ import annotations

import stat
from pathlib import Path

from sessionauth.tokens import Keyring
from tests.support.cli import PASSWORD, invoke


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


def test_check_reports_a_database_file_others_may_read(env: dict[str, str]) -> None:
    """`check`: the 0600 database the CLI made is fine; chmod 644 is a finding naming the fix."""
    made = invoke(env, "users", "create", "ann@example.com", "--password-stdin", input=PASSWORD)
    assert made.exit_code == 0, made.output
    path = Path(env["SESSIONAUTH_DATABASE_URL"].removeprefix("sqlite:///"))
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert (invoke(env, "check").stdout.strip()) == "no findings"
    path.chmod(0o644)
    exposed = invoke(env, "check")
    assert exposed.exit_code == 1
    assert exposed.stdout.splitlines() == [
        f"- the SQLite database {path} is readable or writable by others (it holds password "
        f"hashes and sessions): chmod 600 {path}"
    ]
    assert stat.S_IMODE(path.stat().st_mode) == 0o644  # reported, never changed


def test_serve_refuses_an_unsafe_production_configuration(env: dict[str, str]) -> None:
    """`serve` in production with findings exits 1 with the list, before starting uvicorn."""
    unsafe = {**env, "SESSIONAUTH_ENV": "production", "SESSIONAUTH_SECRET": "weak"}
    result = invoke(unsafe, "serve", "--port", "1")
    assert result.exit_code == 1
    assert "refusing to start in production" in result.stderr
    assert "sessionauth secret" in result.stderr
