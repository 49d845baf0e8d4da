"""What ``sessionauth users reseal-mfa`` tells the operator (attack review 6).

It used to exit 1 with "N TOTP secrets are sealed under no key of SESSIONAUTH_SECRET: put the
old key back and run this again, or `users reset-mfa` those accounts", counting a setup never
confirmed (no second factor: the password alone signs in, and ``pending_totp``/``start_totp``
already treat an unreadable one as none) like an enabled factor, and naming no account, so the
advice could not be followed (``users list`` does not show second factors; ``users reset-mfa``
also deletes passkeys). Now abandoned setups are counted apart and the accounts are named.
"""

from __future__ import annotations

import asyncio
from pathlib import Path

import pyotp

from sessionauth.auth.factors import SecondFactors
from sessionauth.auth.totp import TotpCipher
from sessionauth.backends import open_backend
from sessionauth.stores.users import User
from sessionauth.tokens import Keyring
from tests.support.cli import PASSWORD, invoke, user_named

DROPPED = "d" * 48


def _totp(env: dict[str, str], user: User, *, confirm: bool) -> None:
    """Start (and with ``confirm``, enable) TOTP for ``user`` under the key DROPPED."""
    backend = open_backend(env["SESSIONAUTH_DATABASE_URL"])
    factors = SecondFactors(
        store=backend.factor_store(), cipher=TotpCipher.from_keyring(Keyring([DROPPED]))
    )

    async def enrol() -> None:
        try:
            setup = await factors.start_totp(str(user.id), user.email)
            if confirm:
                await factors.confirm_totp(str(user.id), pyotp.TOTP(setup.secret).now())
        finally:
            await backend.aclose()

    asyncio.run(enrol())


def _account(env: dict[str, str], email: str) -> User:
    invoke(env, "users", "create", email, "--password-stdin", input=PASSWORD)
    user = user_named(env, email)
    assert user is not None
    return user


def test_an_abandoned_setup_under_a_dropped_key_is_no_locked_out_user(
    env: dict[str, str],
) -> None:
    """A setup never confirmed, sealed under a key long gone: nobody needs a reset.

    The user has no second factor (the password alone signs in; the next setup replaces the
    stored one). The command still exits 1 and tells the operator to put the old key back
    or ``users reset-mfa`` the account, which would also delete its passkeys.
    """
    ann = _account(env, "ann@example.com")
    _totp(env, ann, confirm=False)

    result = invoke(env, "users", "reseal-mfa")

    assert "reset-mfa" not in result.stderr, result.stderr
    assert result.exit_code == 0, result.output


def test_unreadable_secrets_are_reported_with_the_accounts_they_lock_out(
    env: dict[str, str],
) -> None:
    """The failure says "`users reset-mfa` those accounts" and names none of them."""
    _account(env, "bob@example.com")
    ann = _account(env, "ann@example.com")
    _totp(env, ann, confirm=True)

    result = invoke(env, "users", "reseal-mfa")

    assert result.exit_code == 1
    assert "ann@example.com" in result.stderr, result.stderr
    assert "1 enabled secret is sealed under no key" in result.stdout, result.stdout


def test_check_names_the_accounts_a_dropped_key_locked_out_and_exits_1(
    env: dict[str, str],
) -> None:
    """``sessionauth check`` before (or after) a key leaves SESSIONAUTH_SECRET.

    Those accounts can never verify a code again; check used to say "no findings".
    """
    ann = _account(env, "ann@example.com")
    _totp(env, ann, confirm=True)
    _totp(env, _account(env, "cy@example.com"), confirm=False)  # abandoned: no finding

    result = invoke(env, "check")

    assert result.exit_code == 1, result.output
    assert "1 enabled TOTP secret is sealed under no key" in result.output, result.output
    assert "ann@example.com" in result.output
    assert "cy@example.com" not in result.output


def test_check_warns_of_secrets_only_an_older_key_opens_and_writes_nothing(
    env: dict[str, str],
) -> None:
    """With the old key still last in the keyring: a warning to reseal before dropping it.

    A setup under way under that key is not counted: dropping the key costs it nothing.
    """
    ann = _account(env, "ann@example.com")
    _totp(env, ann, confirm=True)
    _totp(env, _account(env, "cy@example.com"), confirm=False)
    rotated = {**env, "SESSIONAUTH_SECRET": f"{env['SESSIONAUTH_SECRET']},{DROPPED}"}

    first = invoke(rotated, "check")
    second = invoke(rotated, "check")

    assert first.exit_code == 0, first.output
    assert first.output.endswith("no findings (1 warning above)\n"), first.output
    assert "warning: 1 enabled TOTP secret is sealed under an older key" in first.output
    assert "users reseal-mfa" in first.output
    assert second.output == first.output  # the dry run moved nothing
    invoke(rotated, "users", "reseal-mfa")
    assert "older key" not in invoke(rotated, "check").output
    assert invoke({**env}, "check").exit_code == 0  # the newest key alone opens it now


def test_check_in_development_reads_the_generated_key_and_never_makes_one(
    env: dict[str, str], tmp_path: Path
) -> None:
    """check changes nothing: without a generated key yet, no key opens any secret.

    It used to load the keyring as a server does, which writes development's key into the
    data directory (and raised a traceback when that directory could not be made).
    """
    development = {k: v for k, v in env.items() if k != "SESSIONAUTH_SECRET"}
    ann = _account(development, "ann@example.com")
    _totp(development, ann, confirm=True)
    data = Path(development["SESSIONAUTH_DATA_DIR"])
    assert not (data / "secret").exists()

    result = invoke(development, "check")

    assert not (data / "secret").exists()
    assert "ann@example.com" in result.output, result.output
    (tmp_path / "not-a-directory").write_text("")
    unusable = {**development, "SESSIONAUTH_DATA_DIR": str(tmp_path / "not-a-directory")}
    result = invoke(unusable, "check")
    assert result.exception is None or isinstance(result.exception, SystemExit), result.output
    assert "ann@example.com" in result.output, result.output
