"""``create_app()``: the reference server, assembled from the library and the settings.

Run it with ``sessionauth serve``, or any ASGI server as a factory::

    uvicorn sessionauth.server.app:create_app --factory

The layers, outermost first::

    ServerMiddleware        trusted proxies' headers, CORS for the trusted origins only (it
                            answers preflights), nosniff on every response, HSTS in production,
                            no body for HEAD
    ServerErrorMiddleware   Starlette's: a bare 500, logged, for anything unhandled
    SessionMiddleware       loads and commits the session; 503 (JSON or a page) on outage
    HotRouteMiddleware      answers GET /dashboard, /admin and /csrf-token itself
    CSRFMiddleware          origin layer + token; API bodies must be JSON (forms: /ui/...)
    BodyLimitMiddleware     bodies over 64 KiB get 413 before anything buffers them
    AllowedMethodsMiddleware
                            HEAD reaches the router as GET (FastAPI's routes answer GET only);
                            a 405's Allow names every method the path takes
    FastAPI                 exception handlers, the JSON API (api.py), the pages (pages.py),
                            /static

The stores are views of one backend per database (see :mod:`sessionauth.server.databases`);
nothing connects before the first request. The lifespan checks that a Redis store cannot evict
keys (see :mod:`sessionauth.server.redis_eviction`), builds the :class:`Authenticator` (on
``app.state.authenticator``), creates the first administrator of an empty development database
(see :mod:`sessionauth.server.bootstrap`), and runs the sweep of expired sessions (see
:mod:`sessionauth.server.purge`). On shutdown it closes every backend once.
"""

from __future__ import annotations

import asyncio
import contextlib
import gc
import logging
from collections.abc import AsyncIterator
from typing import Any

from fastapi import FastAPI
from starlette.types import ASGIApp, Scope

from sessionauth import __version__
from sessionauth.auth.authenticator import Authenticator
from sessionauth.auth.client_address import trusted_networks
from sessionauth.auth.lifecycle import AccountLifecycle
from sessionauth.auth.passwords import PasswordHasher
from sessionauth.auth.single_use import SingleUseTokens
from sessionauth.auth.throttle import LoginThrottle
from sessionauth.csrf import CSRFMiddleware
from sessionauth.middleware import SessionMiddleware
from sessionauth.origins import validate_origins
from sessionauth.outages import OutageLog
from sessionauth.policy import Clock, system_clock
from sessionauth.server import (
    api,
    hot_routes,
    lifecycle_api,
    lifecycle_pages,
    mfa_api,
    mfa_pages,
    pages,
    passkey_api,
    totp_pages,
)
from sessionauth.server.account_mail import postbox
from sessionauth.server.allowed_methods import AllowedMethodsMiddleware
from sessionauth.server.bootstrap import bootstrap_admin
from sessionauth.server.databases import Databases
from sessionauth.server.handlers import (
    BodyLimitMiddleware,
    csrf_responder,
    install_handlers,
    unavailable_responder,
)
from sessionauth.server.mail import mail_templates, open_outbox
from sessionauth.server.metrics import Metrics, TimedStore
from sessionauth.server.mfa_api import second_factors
from sessionauth.server.openapi_security import declare_security, session_operations
from sessionauth.server.purge import run_purger
from sessionauth.server.readiness import Readiness
from sessionauth.server.redis_eviction import enforce_no_eviction, eviction_findings
from sessionauth.server.secret_key import load_keyring
from sessionauth.server.server_middleware import ServerMiddleware
from sessionauth.server.settings import Settings, load_settings
from sessionauth.server.settings_findings import enforce
from sessionauth.server.templating import static_files
from sessionauth.server.watched_counter import WatchedCounter
from sessionauth.stores.attempts import AttemptCounter
from sessionauth.stores.base import SessionStore
from sessionauth.stores.tokens import TokenStore

__all__ = ["create_app", "is_api_request"]

logger = logging.getLogger("sessionauth.server")

MAILS_PER_RECIPIENT = 3
"""Account mails one address may be sent per hour (sign-up, reset, verification links)."""
MAILS_PER_ADDRESS = 20
"""Requests for account mail one client address may make per hour."""

UI_PREFIX = "/ui/"
"""HTML form posts go here (pages.py); every other path is the JSON API or a page GET."""


def _complete_openapi(app: FastAPI, *, cookie_name: str) -> None:
    """Make ``app.openapi()`` describe what the server really answers.

    FastAPI's schema lacks the hot routes (not in its router), lists a 422 that the error
    handlers turn into 400, and knows nothing of the answers the middleware gives before a
    route runs: 413 and 415 for bodies, 503 when the store is down; nor of the session cookie
    and CSRF token the routes need (see :mod:`sessionauth.server.openapi_security`).
    """
    generate = app.openapi

    def openapi() -> dict[str, Any]:
        if app.openapi_schema is None:
            app.openapi_schema = declare_security(
                _edge_answers(hot_routes.document(generate())),
                cookie_name=cookie_name,
                operations=session_operations(
                    [
                        *api.router.routes,
                        *lifecycle_api.router.routes,
                        *mfa_api.router.routes,
                        *passkey_api.router.routes,
                    ]
                ),
            )
        return app.openapi_schema

    app.openapi = openapi  # type: ignore[method-assign]


def _edge_answers(schema: dict[str, Any]) -> dict[str, Any]:
    error = {
        "description": "Error",
        "content": {"application/json": {"schema": {"$ref": "#/components/schemas/ErrorBody"}}},
    }
    for operations in schema.get("paths", {}).values():
        for operation in operations.values():
            responses = operation.setdefault("responses", {})
            if responses.pop("422", None) is not None:
                responses.setdefault("400", error)
            if "requestBody" in operation:
                responses.setdefault("413", error)
                responses.setdefault("415", error)
            responses.setdefault("503", error)
    return schema


def is_api_request(scope: Scope) -> bool:
    """Whether a request is for the JSON API, whose unsafe requests must send JSON."""
    return not str(scope["path"]).startswith(UI_PREFIX)


def create_app(
    settings: Settings | None = None,
    *,
    hasher: PasswordHasher | None = None,
    clock: Clock = system_clock,
) -> FastAPI:
    """Build the reference server.

    Args:
        settings: The configuration; read from the ``SESSIONAUTH_*`` environment if omitted.
        hasher: Hashes passwords. The default is argon2id at OWASP's parameters; tests pass
            ``PasswordHasher.for_tests()`` (cheap and insecure) so creating users is fast.
        clock: The Authenticator's time source (login times, TOTP steps, held logins); tests
            move one by hand.

    Raises:
        ConfigurationError: For an unsafe production configuration (each finding with its
            fix, see :func:`~sessionauth.server.settings_findings.findings`), a weak secret, a
            wildcard or invalid origin, or an unknown store URL.
    """
    settings = load_settings() if settings is None else settings
    enforce(settings)
    keyring = load_keyring(settings)
    origins = validate_origins(settings.allowed_origins)
    trusted_networks(settings.trusted_proxies)  # refused in every environment, like '*' origins
    policy = settings.policy()
    metrics = Metrics()
    readiness = Readiness()
    # One backend (one connection or pool) per database: sessions, counters and users share
    # it when they share a URL.
    databases = Databases.open(settings)
    store = TimedStore(
        databases.sessions.session_store(max_sessions=settings.max_sessions_per_user),
        metrics,
        readiness,
    )
    counter = databases.sessions.attempt_counter()
    tokens = databases.sessions.token_store()
    users = databases.users.user_store()
    hasher = hasher if hasher is not None else PasswordHasher()
    outbox = open_outbox(settings, metrics)
    templates = mail_templates(settings)

    @contextlib.asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        async with contextlib.AsyncExitStack() as stack:
            stack.push_async_callback(databases.aclose)
            await _check_eviction(settings)
            # Open the user database (creating its file and table) before anything reads it:
            # a database that cannot be reached fails the start, and the bootstrap below sees
            # the file it will use.
            await users.ping()
            auth = Authenticator(
                users=users,
                sessions=store,
                hasher=hasher,
                throttle=LoginThrottle(WatchedCounter(counter, readiness)),
                roles=settings.roles,
                require_verified=settings.require_verified,
                clock=clock,
                factors=second_factors(settings, databases, keyring, clock=clock),
            )
            # Built after the Authenticator: a sign counter that went backwards is published
            # on its events (the security log, the metrics, the hooks).
            auth.passkeys = passkey_api.passkeys_of(
                settings, databases, counter, keyring, events=auth.events, clock=clock
            )
            metrics.subscribe(auth.events)
            if settings.bootstrap_enabled:
                await bootstrap_admin(
                    auth, data_dir=settings.data_dir, database_url=settings.database_url
                )
            app.state.authenticator = auth
            if outbox is not None:
                # Mail goes out in the background: started before the first request, and
                # given a moment to deliver what is queued when the server stops.
                await stack.enter_async_context(outbox)
            lifecycle = AccountLifecycle(
                auth=auth,
                tokens=SingleUseTokens(tokens=tokens, users=users, principals=store),
                postbox=postbox(outbox, templates),
                base_url=settings.site_url,
                throttle=LoginThrottle(
                    WatchedCounter(counter, readiness),
                    scope="mail:",
                    max_per_account=MAILS_PER_RECIPIENT,
                    account_window=3600,
                    max_per_address=MAILS_PER_ADDRESS,
                    address_window=3600,
                ),
            )
            # Closed in reverse order: the letters in preparation reach the outbox first,
            # which then delivers what it holds before it stops.
            stack.push_async_callback(lifecycle.drain)
            app.state.lifecycle = lifecycle
            await stack.enter_async_context(
                _purging(
                    databases,
                    settings,
                    store,
                    counter,
                    tokens=tokens,
                    readiness=readiness,
                    metrics=metrics,
                )
            )
            # Everything made so far lives as long as the process: move it out of the cyclic
            # collector's reach, so full collections scan only per-request garbage (they
            # stalled the event loop for tens of milliseconds and set the p99).
            gc.freeze()
            yield

    app = FastAPI(
        title="sessionauth",
        version=__version__,
        summary="Server-side session authentication: the reference server's JSON API.",
        lifespan=lifespan,
        # Swagger UI loads its script from a CDN; production serves only /openapi.json.
        docs_url="/docs" if settings.docs_enabled else None,
        redoc_url=None,
        # The server exports its own Prometheus metrics (/metrics). FastAPI's OpenTelemetry
        # hooks, on by default, consult the global providers on every request: 6 us each.
        telemetry={"tracing": False, "metrics": False, "logs": False, "operation_spans": False},
        # Starlette answers "/account/" with a redirect to an absolute URL built from the Host
        # header: any Host a client (or a cache in front) sends would come back as Location.
        # Every route has one spelling, so a trailing slash is a 404 instead.
        redirect_slashes=False,
    )
    app.state.settings = settings
    app.state.keyring = keyring
    app.state.metrics = metrics
    app.state.readiness = readiness
    app.state.outbox = outbox
    app.state.mail_templates = templates
    server_log = logging.getLogger("sessionauth.server")
    app.state.outage_log = OutageLog("store", logger=server_log)
    app.state.full_store_log = OutageLog("store writes", logger=server_log)
    install_handlers(app, metrics)
    # HotRouteMiddleware answers their reads; the router answers other methods with 405.
    app.router.routes[:0] = hot_routes.ROUTES
    _complete_openapi(app, cookie_name=settings.cookie().name)
    app.include_router(api.router)
    app.include_router(lifecycle_api.router)
    app.include_router(mfa_api.router)
    app.include_router(passkey_api.router)
    app.include_router(pages.router)
    app.include_router(lifecycle_pages.router)
    app.include_router(mfa_pages.router)
    app.include_router(totp_pages.router)
    app.mount("/static", static_files(), name="static")
    # add_middleware wraps what is already there: innermost first, outermost last.
    app.add_middleware(AllowedMethodsMiddleware, routes=app.router.routes)
    app.add_middleware(BodyLimitMiddleware)
    app.add_middleware(
        CSRFMiddleware,
        keyring=keyring,
        trusted_origins=origins,
        require_json=is_api_request,
        on_reject=csrf_responder(metrics),
    )
    app.add_middleware(hot_routes.HotRouteMiddleware)
    app.add_middleware(
        SessionMiddleware,
        store=store,
        keyring=keyring,
        cookie=settings.cookie(),
        policy=policy,
        on_unavailable=unavailable_responder(metrics),
        on_touch_skipped=lambda exc: metrics.touches_skipped.inc(),
    )
    _wrap_outermost(app, settings, origins)
    return app


def _wrap_outermost(app: FastAPI, settings: Settings, origins: frozenset[str]) -> None:
    """Put :class:`ServerMiddleware` around the whole stack.

    Outside Starlette's own ``ServerErrorMiddleware`` too, which ``add_middleware`` cannot
    reach: a 500 must carry the security headers like every other answer. It is also the one
    place proxy headers are read (uvicorn's own handling is off, see ``cli.serve``): everything
    inside sees the client's address and scheme already resolved.
    """
    build = app.build_middleware_stack

    def build_with_server_layer() -> ASGIApp:
        return ServerMiddleware(
            build(),
            hsts=settings.hsts,
            trusted_origins=origins,
            trusted_proxies=settings.trusted_proxies,
        )

    app.build_middleware_stack = build_with_server_layer  # type: ignore[method-assign]


async def _check_eviction(settings: Settings) -> None:
    """Refuse (production) or warn about a Redis store that may evict sessions and counters."""
    report = await eviction_findings(settings.session_store_url)
    for line in enforce_no_eviction(report, production=settings.strict):
        logger.warning("configuration: %s", line)


@contextlib.asynccontextmanager
async def _purging(
    databases: Databases,
    settings: Settings,
    store: SessionStore,
    counter: AttemptCounter,
    *,
    tokens: TokenStore,
    readiness: Readiness,
    metrics: Metrics,
) -> AsyncIterator[None]:
    """Run the sweep of expired records for the lifetime of the app, if the store needs one."""
    lock = databases.sessions.purge_lock(settings.data_dir)
    if lock is None:
        yield
        return
    task = asyncio.create_task(
        run_purger(
            store,
            counter,
            lock,
            settings.purge_interval,
            readiness=readiness,
            metrics=metrics,
            tokens=tokens,
        ),
        name="sessionauth-purge",
    )
    try:
        yield
    finally:
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task
