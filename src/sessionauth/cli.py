"""The ``sessionauth`` command: serve, manage users and sessions, purge, check the settings.

Every command reads the same ``SESSIONAUTH_*`` environment as the server (DESIGN.md section 8).
Exit codes: 0 success, 1 failure (the message says why, never with a traceback), 2 usage error.
The ``users`` and ``sessions`` groups live in :mod:`sessionauth.cli_accounts`.
"""

from __future__ import annotations

import asyncio
import copy
import logging
import sys
from typing import Annotated, Any

import typer

from sessionauth import __version__
from sessionauth.auth.authenticator import Authenticator
from sessionauth.backends import open_backend
from sessionauth.cli_accounts import (
    counted,
    factor_key_findings,
    fail,
    role_findings,
    run,
    sessions_app,
    settings_or_exit,
    users_app,
)
from sessionauth.errors import SessionAuthError, StoreMisconfigured, StoreUnavailable
from sessionauth.origins import validate_origins
from sessionauth.server.databases import Databases
from sessionauth.server.log_format import formatter
from sessionauth.server.metrics import pooled_across_workers
from sessionauth.server.redis_eviction import enforce_no_eviction, eviction_findings
from sessionauth.server.secret_key import load_keyring, new_secret
from sessionauth.server.settings import Settings
from sessionauth.server.settings_findings import enforce, findings
from sessionauth.stores.base import SessionStore

__all__ = ["app", "main"]

app = typer.Typer(
    help="Server-side session authentication: the reference server and its admin tools.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
    # Click's plain help: Typer's rich panels label every flag `<bool>`, which reads as if
    # `--yes` took a value.
    rich_markup_mode=None,
)
app.add_typer(users_app, name="users")
app.add_typer(sessions_app, name="sessions")


def _print_version(value: bool) -> None:
    if value:
        typer.echo(f"sessionauth {__version__}")
        raise typer.Exit()


@app.callback()
def _options(
    ctx: typer.Context,
    version: Annotated[
        bool,
        typer.Option(
            "--version", callback=_print_version, is_eager=True, help="Print the version."
        ),
    ] = False,
) -> None:
    """Server-side session authentication: the reference server and its admin tools."""
    del version
    _admin_logging(ctx)


def _admin_logging(ctx: typer.Context) -> None:
    """Log the security events of this command on stderr, and no other line of the library.

    Each command prints its own one-line outcome on stdout. Its security events (a role
    changed, an account disabled, sessions revoked…) are the audit trail of what an
    administrator did, so each goes to stderr as one line in the server's format (JSON with
    ``SESSIONAUTH_LOG_FORMAT=json``), where a wrapper or the shell can keep it. The library's
    other lines (configuration warnings, a store's notes) are for servers' logs, not an
    admin's screen. ``serve`` configures logging afresh (:func:`_log_config`). Undone when the
    command ends, for callers that run several commands in one process (the tests).
    """
    from sessionauth.server.log_format import formatter
    from sessionauth.server.settings import load_settings

    library = logging.getLogger("sessionauth")
    quiet = logging.NullHandler()  # else Python's last resort would print their warnings
    library.addHandler(quiet)
    ctx.call_on_close(lambda: library.removeHandler(quiet))
    if ctx.invoked_subcommand == "serve":
        return
    try:
        log_format = load_settings().log_format
    except SessionAuthError:
        log_format = "text"  # the command itself says what is wrong with the settings
    events = logging.StreamHandler(sys.stderr)
    events.setFormatter(formatter(log_format, use_colors=sys.stderr.isatty()))
    security = logging.getLogger("sessionauth.security")
    level = security.level
    security.addHandler(events)
    security.setLevel(logging.INFO)  # user_created and email_verified are INFO

    def undo() -> None:
        security.removeHandler(events)
        security.setLevel(level)

    ctx.call_on_close(undo)


# -- server ---------------------------------------------------------------------------------


@app.command()
def serve(
    host: Annotated[str, typer.Option(metavar="HOST", help="Address to listen on.")] = "127.0.0.1",
    port: Annotated[
        int,
        typer.Option(
            min=0,
            max=65535,
            metavar="PORT",
            help='Port to listen on; 0 picks a free one, which the "listening on" line shows.',
        ),
    ] = 8000,
    workers: Annotated[int, typer.Option(min=1, metavar="N", help="Worker processes.")] = 1,
    access_log: Annotated[
        bool, typer.Option(help="Log every request (off behind a proxy that logs them).")
    ] = True,
    graceful_timeout: Annotated[
        float,
        typer.Option(
            min=0,
            metavar="SECONDS",
            help="Seconds to drain on SIGTERM: requests in progress and those arriving on open "
            "connections are answered (with Connection: close); then the rest are cancelled.",
        ),
    ] = 30.0,
) -> None:
    """Run the reference server (uvicorn, uvloop, httptools)."""
    import uvicorn

    from sessionauth.server.serving import DRAINING_PROTOCOL, listen, serve_on

    settings = settings_or_exit()
    try:
        # Check here, once, so a bad configuration is one clear message, not a traceback per
        # worker; this also makes development's secret and the users table before workers race.
        asyncio.run(_preflight(settings))
    except SessionAuthError as exc:
        fail(str(exc))
    if workers > 1 and settings.session_store_url.lower().startswith("memory:"):
        fail("memory:// sessions are not shared between workers: use --workers 1 or a real store")
    # Bind before the application starts: a taken port must fail the start before the first
    # start's one-time admin password is printed (by the start-up), or that password is lost.
    try:
        sock = listen(host, port)
    except OSError as exc:
        fail(f"cannot listen on {host}:{port}: {exc.strerror or exc}")
    port = sock.getsockname()[1]  # the one the system picked, for --port 0
    shown = f"[{host}]" if ":" in host else host
    # Formatted as the server's own log lines: with SESSIONAUTH_LOG_FORMAT=json, one JSON
    # object like every other line a log pipeline reads from stderr.
    listening = logging.LogRecord(
        "sessionauth.server", logging.INFO, __file__, 0, "listening on http://%s:%d",
        (shown, port), None,
    )  # fmt: skip
    typer.echo(formatter(settings.log_format).format(listening), err=True)
    config = uvicorn.Config(
        "sessionauth.server.app:create_app",
        factory=True,
        workers=workers,
        loop="uvloop",
        http=DRAINING_PROTOCOL,
        # The app resolves proxy headers itself, from SESSIONAUTH_TRUSTED_PROXIES only (see
        # TrustedProxyMiddleware); uvicorn's handling would apply them a second time.
        proxy_headers=False,
        server_header=False,
        access_log=access_log,
        log_config=_log_config(settings.log_format),
        timeout_graceful_shutdown=graceful_timeout,  # type: ignore[arg-type]  # any seconds
    )
    with pooled_across_workers(workers):
        serve_on(sock, config)


async def _preflight(settings: Settings) -> None:
    """Fail before starting uvicorn on what would fail every worker's start-up."""
    enforce(settings)
    load_keyring(settings)
    validate_origins(settings.allowed_origins)
    databases = Databases.open(settings)
    try:
        sessions = databases.sessions.session_store()
        databases.sessions.attempt_counter()
        await _refused_or_reachable(sessions)
        # Only the refusal here: each worker's start-up logs the warnings itself.
        enforce_no_eviction(
            await eviction_findings(settings.session_store_url), production=settings.strict
        )
        # The accounts are needed from the first request: reach them (and create their table).
        await databases.users.user_store().ping()
    finally:
        await databases.aclose()


async def _refused_or_reachable(store: SessionStore) -> None:
    """Raise if the session store answers but refuses its URL; an unreachable one may start.

    A store that is down at start-up only means 503s until it is back (the workers connect on
    first use), but one that refuses the URL (a Redis database it does not have, a PostgreSQL
    login or setting it refuses) would answer 503 forever.

    Raises:
        StoreMisconfigured: Saying what the store refused.
    """
    try:
        await store.ping()
    except StoreMisconfigured as exc:
        raise StoreMisconfigured(f"the session store: {exc}") from exc
    except StoreUnavailable:
        return  # down for now: requests get 503 until it answers, as before


def _log_config(log_format: str) -> dict[str, Any]:
    """Uvicorn's logging, plus the library's loggers at INFO and every other logger's warnings.

    The library's records (security events, purges, outages) from INFO and any other logger's
    (asyncpg's, redis's, asyncio's…) from WARNING go through uvicorn's ``default`` handler and
    formatter on stderr, one line each: ``SESSIONAUTH_LOG_FORMAT=json`` makes every line a JSON
    object, a traceback inside its ``exception`` field.
    """
    from uvicorn.config import LOGGING_CONFIG

    from sessionauth.server.log_format import log_config

    config = copy.deepcopy(LOGGING_CONFIG)
    # Without a handler on the root logger, third-party records went to Python's last resort:
    # raw text, tracebacks over many lines, in the middle of JSON logs (asyncpg's pool retrying
    # during a PostgreSQL outage). Their INFO and DEBUG are their own business: not logged.
    config["root"] = {"handlers": ["default"], "level": "WARNING"}
    # No handler of its own: its records reach the root's, once.
    config["loggers"]["sessionauth"] = {"level": "INFO"}
    return log_config(config, log_format)


async def _unreachable(settings: Settings) -> list[str]:
    """Say which of the session store and the users database fails, and why.

    Each either does not answer or answers but refuses its URL (``StoreMisconfigured``).
    """
    found = []
    try:
        databases = Databases.open(settings)
    except SessionAuthError as exc:
        return [f"the session store does not answer: {exc}"]
    try:
        for name, store in (
            ("the session store", databases.sessions.session_store()),
            ("the users database", databases.users.user_store()),
        ):
            try:
                await store.ping()
            except StoreMisconfigured as exc:
                found.append(f"{name}: {exc}")
            except SessionAuthError as exc:
                found.append(f"{name} does not answer: {exc}")
    finally:
        await databases.aclose()
    return found


@app.command()
def check() -> None:
    """Print every unsafe setting and unreachable store, with its fix; exit 1 if there is any.

    Also every enabled TOTP secret that no key of SESSIONAUTH_SECRET opens (those users cannot
    sign in with a code), and, as a warning, the secrets only an older key opens.
    """
    settings = settings_or_exit()
    found = findings(settings) + role_findings(settings) + asyncio.run(_unreachable(settings))
    try:
        eviction = asyncio.run(eviction_findings(settings.session_store_url))
    except SessionAuthError as exc:
        fail(str(exc))
    keys, older_keys = factor_key_findings(settings)
    found += eviction.problems + keys
    for item in found:
        typer.echo(f"- {item}")
    warnings = eviction.warnings + older_keys
    for item in warnings:
        typer.echo(f"- warning: {item}")
    if found:
        raise typer.Exit(1)
    if warnings:  # said apart, so that the warnings above do not read as contradicted
        typer.echo(f"no findings ({counted(len(warnings), 'warning')} above)")
    else:
        typer.echo("no findings")


@app.command()
def secret() -> None:
    """Print a fresh strong secret key for SESSIONAUTH_SECRET."""
    typer.echo(new_secret())


@app.command("purge-expired")
def purge_expired() -> None:
    """Delete expired sessions and login counters now (safe while servers run)."""
    settings = settings_or_exit()

    async def purge(auth: Authenticator[int]) -> int:
        # Stores that expire by themselves (Redis) purge nothing: "purged 0" must still mean
        # the store answered.
        await auth.sessions.ping()
        async with open_backend(settings.session_store_url) as backend:
            purged = await auth.sessions.purge_expired()
            await backend.attempt_counter().purge()
        return purged

    # Purging reads no account: a missing accounts database is no reason to refuse.
    typer.echo(f"purged {counted(run(purge, allow_new_database=True), 'expired session')}")


def main() -> None:
    """Console-script entry point."""
    app()
