"""``sessionauth users …`` and ``sessionauth sessions …``, and what every command shares.

Each command opens the configured stores (``SESSIONAUTH_*``, as the server reads them), does
its work through the library's :class:`~sessionauth.auth.authenticator.Authenticator` (so a
role change, a password reset, a disable or a delete revokes sessions exactly as the API does,
and publishes the same events), and closes them. Expected failures print ``error: …`` and
exit 1; usage errors exit 2.
"""

from __future__ import annotations

import asyncio
import contextlib
import datetime as dt
import getpass
import sys
import warnings
from collections.abc import AsyncIterator, Awaitable, Callable
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, NoReturn, TypeVar

import typer

from sessionauth.auth.admin_rules import check_removal
from sessionauth.auth.authenticator import Authenticator
from sessionauth.auth.events import AccountUnlocked
from sessionauth.auth.passwords import PasswordHasher
from sessionauth.auth.throttle import LoginThrottle
from sessionauth.auth.user_source import AccountLike, UserSource
from sessionauth.backends import open_backend
from sessionauth.backends.sqlite.files import database_path
from sessionauth.errors import (
    AdminLockout,
    ConfigurationError,
    SessionAuthError,
    StoreUnavailable,
)
from sessionauth.server.databases import Databases
from sessionauth.server.mfa_api import second_factors
from sessionauth.server.secret_key import existing_keyring, load_keyring, secret_keys
from sessionauth.server.settings import Settings, load_settings
from sessionauth.stores.users import LAST_ADMIN, User
from sessionauth.tokens import Keyring

if TYPE_CHECKING:  # the mfa extra may be missing; the commands that need it say so
    from sessionauth.auth.factors import ResealReport, SecondFactors

__all__ = [
    "counted",
    "factor_key_findings",
    "fail",
    "role_findings",
    "run",
    "sessions_app",
    "settings_or_exit",
    "users_app",
]

_T = TypeVar("_T")
_A = TypeVar("_A")

# Users whose sessions `sessions list` / `revoke --all` handle at once: one at a time took 2.4
# ms a user on PostgreSQL (2,000 users: 4.7 s), too slow for "sign everyone out" in an incident.
_USERS_AT_ONCE = 16

# The headers of `users list` and `sessions list`, rows like the others (see _table).
_USER_COLUMNS = ("ID", "EMAIL", "ROLE", "STATUS", "CREATED")
_SESSION_COLUMNS = ("HANDLE", "USER", "CREATED", "LAST SEEN", "ADDRESS", "BROWSER")

# Plain help, like the main app's (see sessionauth.cli).
users_app = typer.Typer(help="Manage user accounts.", no_args_is_help=True, rich_markup_mode=None)
sessions_app = typer.Typer(
    help="List and revoke sessions.", no_args_is_help=True, rich_markup_mode=None
)

Email = Annotated[str, typer.Argument(metavar="EMAIL", help="The account's email address.")]
Yes = Annotated[bool, typer.Option("--yes", "-y", help="Do not ask for confirmation.")]
PasswordStdin = Annotated[
    bool, typer.Option("--password-stdin", help="Read the password from the first stdin line.")
]
Force = Annotated[
    bool,
    typer.Option(
        "--force", help="Allow demoting, disabling or deleting the last enabled administrator."
    ),
]


def counted(count: int, noun: str, plural: str | None = None) -> str:
    """Return ``count`` and ``noun``, plural unless it is 1: ``1 session``, ``0 sessions``.

    Every count the commands print goes through here, so that none says "1 sessions".

    Args:
        count: How many.
        noun: The singular; a phrase may end with its verb (``"enabled secret is"``).
        plural: The plural when it is not ``noun`` + ``s`` (``"enabled secrets are"``).
    """
    if count == 1:
        return f"1 {noun}"
    return f"{count} {plural if plural is not None else noun + 's'}"


def fail(message: str) -> NoReturn:
    """Print ``error: message`` to stderr and exit 1."""
    typer.echo(f"error: {message}", err=True)
    raise typer.Exit(1)


def settings_or_exit() -> Settings:
    """Read the settings from the environment, or exit 1 naming what is invalid."""
    try:
        return load_settings()
    except ConfigurationError as exc:
        fail(str(exc))


def _password(from_stdin: bool) -> str:
    if from_stdin:
        line = sys.stdin.readline()
        return line[:-1] if line.endswith("\n") else line
    try:
        with warnings.catch_warnings():
            # Without a terminal getpass warns that it cannot hide the input: the error below
            # says what to do instead.
            warnings.simplefilter("ignore", getpass.GetPassWarning)
            return str(typer.prompt("Password", hide_input=True, confirmation_prompt=True))
    except typer.Abort:
        fail("no password given: type it at a terminal, or pipe it in with --password-stdin")


def _printable(text: str) -> str:
    r"""``text`` with each character that is not printable, and the backslash, escaped.

    A browser's User-Agent is whatever the client sent: a tab would split a piped row, and a
    C1 control (``\x9b`` is a terminal's CSI) could drive the operator's terminal. The
    backslash is doubled so that a sent ``\t`` is not read as an escaped tab.
    """
    if text.isprintable() and "\\" not in text:
        return text
    return "".join(
        c if c.isprintable() and c != "\\" else c.encode("unicode_escape").decode() for c in text
    )


def _when(timestamp: float) -> str:
    return dt.datetime.fromtimestamp(timestamp, dt.UTC).strftime("%Y-%m-%d %H:%M:%S UTC")


@contextlib.asynccontextmanager
async def _authenticator(settings: Settings, *, factors: bool) -> AsyncIterator[Authenticator[int]]:
    databases = Databases.open(settings)
    async with contextlib.AsyncExitStack() as stack:
        stack.push_async_callback(databases.aclose)
        yield Authenticator(
            users=databases.users.user_store(),
            sessions=databases.sessions.session_store(max_sessions=settings.max_sessions_per_user),
            hasher=PasswordHasher(),
            # The servers' counters, for `users unlock`; no CLI command verifies a password.
            throttle=LoginThrottle(databases.sessions.attempt_counter()),
            roles=settings.roles,
            factors=(
                second_factors(settings, databases, load_keyring(settings)) if factors else None
            ),
        )


def missing_database(settings: Settings) -> Path | None:
    """The accounts database's file if it is SQLite and not there yet, else ``None``."""
    if not settings.database_url.lower().startswith("sqlite:"):
        return None
    path = database_path(settings.database_url)
    if path == ":memory:" or Path(path).exists():
        return None
    return Path(path).absolute()


def run(
    work: Callable[[Authenticator[int]], Awaitable[_T]],
    *,
    factors: bool = False,
    allow_new_database: bool = False,
) -> _T:
    """Run ``work`` against the configured stores; expected errors exit 1 with a message.

    ``factors``: give the Authenticator the second factors, which needs the secret key (TOTP
    secrets are encrypted under it); the other commands work without one.
    ``allow_new_database``: the command may run where the SQLite accounts database is not there
    yet (``users create`` makes it; ``purge-expired`` reads no account); any other exits 1.
    The default URL is relative to the current directory: run from elsewhere, a command made an
    empty database of its own there and answered from it ("no users", a role change for nobody)
    as if it were the server's.
    """
    settings = settings_or_exit()
    missing = missing_database(settings)
    if missing is not None and not allow_new_database:
        fail(
            f"no accounts database at {missing}: run the command in the server's directory (a"
            " relative SESSIONAUTH_DATABASE_URL, like the default, is relative to the current"
            " directory) or set SESSIONAUTH_DATABASE_URL; `sessionauth users create` makes a"
            " new database"
        )

    async def main() -> _T:
        async with _authenticator(settings, factors=factors) as auth:
            return await work(auth)

    try:
        return asyncio.run(main())
    except AdminLockout as exc:
        # Only the CLI may override the last-administrator rule: say how.
        hint = " (--force overrides it)" if str(exc) == LAST_ADMIN else ""
        fail(f"{exc}{hint}")
    except SessionAuthError as exc:
        fail(str(exc) or type(exc).__name__)


async def _each(
    accounts: list[_A], work: Callable[[_A], Awaitable[_T]], *, at_once: int = _USERS_AT_ONCE
) -> list[_T]:
    """``work`` for every account, ``at_once`` at a time; the results in the accounts' order.

    The first failure stops the rest (they are cancelled) and is raised as itself, so the
    command ends with its message as if the accounts had been handled one by one.
    """
    slots: dict[int, _T] = {}
    pending = iter(enumerate(accounts))

    async def worker() -> None:
        for at, account in pending:  # shared: each account is taken by one worker
            slots[at] = await work(account)

    try:
        async with asyncio.TaskGroup() as group:
            for _ in range(min(at_once, len(accounts))):
                group.create_task(worker())
    except BaseExceptionGroup as failed:
        raise failed.exceptions[0] from None
    return [slots[at] for at in range(len(accounts))]


async def _user(auth: Authenticator[int], email: str) -> User:
    user = await auth.find_user(email)
    if user is None:
        fail(f"no user with email {email!r}")
    return user


def role_findings(settings: Settings) -> list[str]:
    """Accounts whose role is outside ``SESSIONAUTH_ROLES``, as ``sessionauth check`` findings.

    A SQLite database that does not exist yet has no accounts (and is not created here); one
    that cannot be read is a finding of its own.
    """
    url = settings.database_url
    if url.lower().startswith("sqlite") and not Path(database_path(url)).exists():
        return []

    async def strays() -> list[User]:
        async with open_backend(url) as backend:
            users = backend.user_store()
            return [user for user in await users.list() if user.role not in settings.roles]

    try:
        found = asyncio.run(strays())
    except StoreUnavailable as exc:
        return [f"the users database could not be read to check roles: {exc}"]
    allowed = ", ".join(settings.roles)
    return [
        f"user {user.email} has the role {user.role!r}, which is not in SESSIONAUTH_ROLES "
        f"({allowed}): add it there or run `sessionauth users set-role {user.email} ROLE`"
        for user in found
    ]


# -- users ----------------------------------------------------------------------------------


@users_app.command("create")
def users_create(
    email: Email,
    role: Annotated[
        str, typer.Option(metavar="ROLE", help="The role, one of SESSIONAUTH_ROLES.")
    ] = "user",
    password_stdin: PasswordStdin = False,
) -> None:
    """Create an account."""
    password = _password(password_stdin)

    async def create(auth: Authenticator[int]) -> User:
        return await auth.create_user(email, password, role=role)

    missing = missing_database(settings_or_exit())  # before run() makes it
    user = run(create, allow_new_database=True)
    if missing is not None:
        typer.echo(f"created the accounts database {missing}")
    typer.echo(f"created user {user.id} {user.email} ({user.role})")


@users_app.command("list")
def users_list() -> None:
    """List every account, one line each under a header line naming the columns.

    The columns: ID, EMAIL, ROLE, STATUS ("active" or "disabled", then ", unverified" for an
    address not yet confirmed) and CREATED (UTC). Piped, the columns are separated by tabs, and
    `tail -n +2` skips the header; at a terminal they are aligned with spaces.
    """

    async def everyone(auth: Authenticator[int]) -> list[User]:
        return await auth.list_users()

    accounts = run(everyone)
    if not accounts:
        typer.echo("no users")
        return
    rows = [
        (
            str(user.id),
            user.email,
            user.role,
            ("disabled" if user.disabled else "active")
            + ("" if user.email_verified else ", unverified"),
            _when(user.created_at),
        )
        for user in accounts
    ]
    for line in _table([_USER_COLUMNS, *rows], aligned=sys.stdout.isatty()):
        typer.echo(line)


@users_app.command("set-role")
def users_set_role(
    email: Email,
    role: Annotated[
        str, typer.Argument(metavar="ROLE", help="The role, one of SESSIONAUTH_ROLES.")
    ],
    force: Force = False,
) -> None:
    """Change a role; the user's live sessions carry it at once."""

    async def change(auth: Authenticator[int]) -> None:
        await auth.set_role((await _user(auth, email)).id, role, force=force)

    run(change)
    typer.echo(f"{email} is now {role}")


@users_app.command("set-password")
def users_set_password(email: Email, password_stdin: PasswordStdin = False) -> None:
    """Set a password; every session of the user is revoked."""
    password = _password(password_stdin)

    async def reset(auth: Authenticator[int]) -> int:
        return await auth.set_password((await _user(auth, email)).id, password)

    revoked = run(reset)
    typer.echo(f"password changed for {email}; {counted(revoked, 'session')} revoked")


async def _removable(auth: Authenticator[int], email: str, force: bool, question: str) -> User:
    """The account, once the refusals that need no answer are out of the way, and confirmed.

    A missing account or the last-administrator rule refuses before the operator is asked
    (``question``; ``""``: ``--yes``), not after they said yes.
    """
    user = await _user(auth, email)
    await check_removal(auth.user_store(), user.id, actor=None, force=force)
    if question:
        typer.confirm(question, abort=True)
    return user


@users_app.command("disable")
def users_disable(email: Email, yes: Yes = False, force: Force = False) -> None:
    """Disable an account and revoke its sessions."""
    question = "" if yes else f"Disable {email} and sign them out everywhere?"

    async def disable(auth: Authenticator[int]) -> None:
        user = await _removable(auth, email, force, question)
        await auth.set_disabled(user.id, True, force=force)

    run(disable)
    typer.echo(f"{email} is disabled and signed out everywhere")


@users_app.command("enable")
def users_enable(email: Email) -> None:
    """Re-enable a disabled account."""

    async def enable(auth: Authenticator[int]) -> None:
        await auth.set_disabled((await _user(auth, email)).id, False)

    run(enable)
    typer.echo(f"{email} is enabled")


@users_app.command("unlock")
def users_unlock(email: Email) -> None:
    """Let an account sign in again at once: forget the failed attempts against it.

    The login throttle refuses an account for up to its window (15 minutes) after five wrong
    passwords or codes, whoever typed them; this ends that. The client addresses' counts stay.
    """

    async def unlock(auth: Authenticator[int]) -> None:
        user = await _user(auth, email)
        assert auth.throttle is not None  # noqa: S101 - _authenticator gives the CLI one
        await auth.throttle.clear_account(user.email, str(user.id))
        await auth.events.publish(AccountUnlocked(user_id=user.id, actor=None))

    run(unlock)
    typer.echo(f"{email} may sign in again")


@users_app.command("verify")
def users_verify(email: Email) -> None:
    """Mark an account's email as confirmed (for SESSIONAUTH_REQUIRE_VERIFIED)."""

    async def verify(auth: Authenticator[int]) -> bool:
        user = await _user(auth, email)
        if not user.email_verified:
            await auth.mark_email_verified(user.id)
        return user.email_verified

    already = run(verify)
    typer.echo(f"{email} was already verified" if already else f"{email} is verified")


@users_app.command("delete")
def users_delete(email: Email, yes: Yes = False, force: Force = False) -> None:
    """Delete an account and revoke its sessions."""
    question = "" if yes else f"Delete {email} and sign them out everywhere?"

    async def delete(auth: Authenticator[int]) -> int:
        user = await _removable(auth, email, force, question)
        return await auth.delete_user(user.id, force=force)

    revoked = run(delete)
    typer.echo(f"deleted {email}; {counted(revoked, 'session')} revoked")


@users_app.command("reset-mfa")
def users_reset_mfa(email: Email, yes: Yes = False) -> None:
    """Remove every second factor of an account (a lost authenticator); sign it out everywhere."""
    if not yes:
        typer.confirm(
            f"Remove every second factor of {email} and sign them out everywhere?", abort=True
        )

    async def reset(auth: Authenticator[int]) -> int:
        return await auth.reset_factors((await _user(auth, email)).id)

    revoked = run(reset, factors=True)
    typer.echo(f"second factors of {email} removed; {counted(revoked, 'session')} revoked")


@users_app.command("reseal-mfa")
def users_reseal_mfa() -> None:
    """Move every TOTP secret to the newest key of SESSIONAUTH_SECRET (after a rotation).

    Then the older keys can be dropped from SESSIONAUTH_SECRET without locking anyone out.
    """

    async def reseal(auth: Authenticator[int]) -> tuple[ResealReport, list[str]]:
        assert auth.factors is not None  # noqa: S101 - run(factors=True) gives them
        return await _reseal(auth.factors, auth.users, dry_run=False)

    report, locked_out = run(reseal, factors=True)
    typer.echo(
        f"{counted(report.moved, 'TOTP secret')} moved to the newest key; "
        f"{counted(report.current, 'was', 'were')} on it; "
        f"{report.changed} changed meanwhile (left as they are); "
        f"{counted(report.abandoned, 'setup never confirmed is', 'setups never confirmed are')} "
        "sealed under no key (no second factor: left as they are); "
        f"{counted(len(locked_out), 'enabled secret is', 'enabled secrets are')} "
        "sealed under no key"
    )
    if locked_out:
        fail(_locked_out(locked_out, "run this again"))


async def _reseal(
    factors: SecondFactors, users: UserSource[AccountLike], *, dry_run: bool
) -> tuple[ResealReport, list[str]]:
    """Reseal (or count) the TOTP secrets; name the users whose enabled secret no key opens."""
    report = await factors.reseal_all(dry_run=dry_run)
    locked_out = []
    for user_id in report.unreadable:
        user = await users.get(int(user_id))
        locked_out.append(user.email if user is not None else f"user id {user_id}")
    return report, locked_out


def _secrets(count: int) -> str:
    return counted(count, "enabled TOTP secret is", "enabled TOTP secrets are")


def _locked_out(emails: list[str], then: str) -> str:
    return (
        f"{_secrets(len(emails))} sealed under no key of SESSIONAUTH_SECRET (in development "
        f"without it: of the key generated in SESSIONAUTH_DATA_DIR): {', '.join(emails)}. Put "
        f"the old key back (last) and {then}; or those users turn TOTP off with a recovery "
        "code, or `sessionauth users reset-mfa EMAIL` removes their second factors (passkeys "
        "too)"
    )


def factor_key_findings(settings: Settings) -> tuple[list[str], list[str]]:
    """Enabled TOTP secrets that no key opens (findings) or only an older key opens (warnings).

    For ``sessionauth check`` before a key leaves ``SESSIONAUTH_SECRET``: a secret sealed under
    a dropped key can never verify a code again. Writes no key and no factor: development's
    key is read, never generated (without one yet, no key opens any secret); a SQLite users
    database that does not exist yet has no factors (opening one that exists creates the
    factor tables it lacks, as the role check creates the users table). A missing or weak
    secret is the settings findings' to report.
    """
    url = settings.database_url
    if url.lower().startswith("sqlite") and not Path(database_path(url)).exists():
        return [], []
    keyring = existing_keyring(settings)
    if keyring is None and (secret_keys(settings) or not settings.generates_secret):
        return [], []  # a weak or missing SESSIONAUTH_SECRET: findings() says so

    async def census() -> tuple[ResealReport, list[str]]:
        # Development before its key was generated: no key opens any secret.
        databases = Databases.open(settings)
        try:
            factors = second_factors(settings, databases, keyring or Keyring.generate())
            return await _reseal(factors, databases.users.user_store(), dry_run=True)
        finally:
            await databases.aclose()

    try:
        report, locked_out = asyncio.run(census())
    except (SessionAuthError, OSError) as exc:
        return [f"the second factors could not be read to check their keys: {exc}"], []
    found = [_locked_out(locked_out, "run `sessionauth users reseal-mfa`")] if locked_out else []
    older = [
        f"{_secrets(report.moved)} sealed under an older key of SESSIONAUTH_SECRET only: "
        "run `sessionauth users reseal-mfa` before dropping it"
    ]
    return found, older if report.moved else []


# -- sessions -------------------------------------------------------------------------------


@sessions_app.command("list")
def sessions_list(
    user: Annotated[
        str | None, typer.Option("--user", metavar="EMAIL", help="Only this user's.")
    ] = None,
) -> None:
    """List signed-in sessions, one line each under a header line naming the columns.

    The columns: HANDLE (what `sessions revoke HANDLE` takes), USER (the email), CREATED and
    LAST SEEN (UTC), ADDRESS (the client's IP) and BROWSER (its User-Agent, a backslash
    doubled and what is not printable escaped); "-" when unknown. Piped, the columns are
    separated by tabs, and `tail -n +2` skips the header; at a terminal they are aligned with
    spaces. Sessions are indexed by user, so anonymous ones (no login) are not listed.
    """

    async def listing(auth: Authenticator[int]) -> list[list[tuple[str, ...]]]:
        accounts = [await _user(auth, user)] if user is not None else await auth.list_users()

        async def rows_of(account: User) -> list[tuple[str, ...]]:
            return [
                (
                    i.handle,
                    account.email,
                    _when(i.created),
                    _when(i.last_seen),
                    _printable(i.ip or "-"),
                    _printable(i.user_agent or "-"),
                )
                for i in await auth.all_sessions(account.id)
            ]

        return await _each(accounts, rows_of)

    rows = [row for account_rows in run(listing) for row in account_rows]
    if not rows:
        # One line instead of a header over nothing, so that `tail -n +2` still leaves none.
        typer.echo("no signed-in sessions" if user is None else f"{user} has no signed-in sessions")
        return
    for line in _table([_SESSION_COLUMNS, *rows], aligned=sys.stdout.isatty()):
        typer.echo(line)


def _table(rows: list[tuple[str, ...]], *, aligned: bool) -> list[str]:
    """The lines of ``rows``: cells padded to their column's widest if ``aligned``, else tabs.

    Tabs for a script (``cut -f``; the cells hold spaces); a reader at a terminal gets the
    columns lined up under the header, as ``ps`` and ``kubectl get`` print them.
    """
    if not aligned:
        return ["\t".join(row) for row in rows]
    widths = [max(map(len, column)) for column in zip(*rows, strict=True)]
    return [
        "  ".join(cell.ljust(width) for cell, width in zip(row, widths, strict=True)).rstrip()
        for row in rows
    ]


@sessions_app.command("revoke")
def sessions_revoke(
    handle: Annotated[
        str | None, typer.Argument(metavar="HANDLE", help="The session's handle.")
    ] = None,
    user: Annotated[
        str | None, typer.Option("--user", metavar="EMAIL", help="Every session of a user.")
    ] = None,
    all_users: Annotated[bool, typer.Option("--all", help="Every signed-in session.")] = False,
    yes: Yes = False,
) -> None:
    """Revoke one session (HANDLE), a user's (--user EMAIL), or everyone's (--all)."""
    if sum((handle is not None, user is not None, all_users)) != 1:
        raise typer.BadParameter("give exactly one of HANDLE, --user EMAIL or --all")
    if not yes:
        target = (
            "this session"
            if handle is not None
            else f"every session of {user}"
            if user is not None
            else "every signed-in session"
        )
        typer.confirm(f"Revoke {target}?", abort=True)

    async def revoke(auth: Authenticator[int]) -> int:
        if handle is not None:
            await auth.revoke_handle(handle)
            return 1
        accounts = [await _user(auth, user)] if user is not None else await auth.list_users()
        return sum(await _each(accounts, lambda account: auth.revoke_all_sessions(account.id)))

    typer.echo(f"revoked {counted(run(revoke), 'session')}")
