"""What the HTML pages need from a request: the signed-in user, flash messages, a CSRF token.

Pages are for browsers, so a missing login always answers with a redirect to the login page
(never the API's 401 JSON), carrying the page as ``next`` only in the form
:func:`~sessionauth.auth.guards.safe_next` accepts. Flash messages ride in the session and are
shown once, by the next page rendered after a form post (Post/Redirect/Get).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Literal
from urllib.parse import quote

from starlette.requests import Request
from starlette.responses import RedirectResponse

from sessionauth.auth.authenticator import Authenticator
from sessionauth.auth.client_address import client_address as _client_address
from sessionauth.auth.guards import safe_next, session_of
from sessionauth.auth.lifecycle import AccountLifecycle
from sessionauth.csrf import csrf_token
from sessionauth.errors import NotAuthenticated
from sessionauth.stores.users import User
from sessionauth.tokens import Keyring

__all__ = [
    "FLASH_KEY",
    "Flash",
    "authenticator",
    "client_address",
    "csrf_value",
    "flash",
    "lifecycle",
    "login_redirect",
    "page_user",
    "pop_flashes",
    "see_other",
    "session_of",
    "session_role",
]

FLASH_KEY = "_flash"
# A user who never loads a page while posting forms must not grow the session record forever.
_MAX_FLASHES = 5

Level = Literal["success", "error", "info"]


@dataclass(frozen=True, slots=True)
class Flash:
    """A one-time message shown on the next page.

    Attributes:
        level: ``success``, ``error`` or ``info`` (decides the colour and the ARIA role).
        text: The message; escaped when rendered.
    """

    level: Level
    text: str


def authenticator(request: Request) -> Authenticator[int]:
    """Return the server's :class:`Authenticator` (``app.state.authenticator``)."""
    auth: Authenticator[int] = request.app.state.authenticator
    return auth


def lifecycle(request: Request) -> AccountLifecycle:
    """Return the server's :class:`AccountLifecycle` (``app.state.lifecycle``)."""
    flows: AccountLifecycle = request.app.state.lifecycle
    return flows


def _keyring(request: Request) -> Keyring:
    keyring: Keyring = request.app.state.keyring
    return keyring


def client_address(request: Request) -> str:
    """The client's address, as resolved from trusted proxies' headers by the app's middleware.

    The headers are not read again here: walking them twice would go one hop further left,
    into what the client wrote.
    """
    return _client_address(request.scope)


def csrf_value(request: Request) -> str:
    """Return a masked CSRF token for the page's forms, or ``""`` for a cookieless visitor.

    A visitor with neither a session nor a pre-session cookie (the login page's usual reader,
    and every crawler) gets no token and no cookie: its login post is judged by the origin
    layer alone. One holding a pre-session cookie (it asked ``/csrf-token`` before) must send
    a token, so it gets one bound to that cookie (or to a fresh one, if it was stale).
    """
    session = session_of(request)
    presession = session.presession
    if not session.will_be_stored and (presession is None or not presession.cookie_sent):
        return ""
    return csrf_token(session, _keyring(request))


def login_redirect(request: Request, target: str | None = None) -> RedirectResponse:
    """Redirect to the login page, asking to come back to ``target`` (this page) afterwards.

    A browser that still sent a session cookie had a session that ended since (revoked,
    expired, its account disabled, a held login timed out): the login page then says so,
    instead of silently asking to sign in again. One that sent none had nothing to end.
    """
    if target is None:
        target = request.url.path + (f"?{request.url.query}" if request.url.query else "")
    ended = "notice=expired&" if _session_cookie_sent(request) else ""
    return see_other(f"/login?{ended}next={quote(safe_next(target), safe='/')}")


def _session_cookie_sent(request: Request) -> bool:
    name = request.app.state.settings.cookie().name
    return bool(request.cookies.get(name))


def see_other(location: str) -> RedirectResponse:
    """A 303 redirect: the browser follows it with a GET, so a reload never re-posts a form."""
    return RedirectResponse(location, status_code=303)


async def page_user(request: Request) -> User | None:
    """Return the signed-in, enabled user, or ``None`` (answer with :func:`login_redirect`).

    A session whose user was deleted or disabled meanwhile is destroyed on the way.
    """
    try:
        return await authenticator(request).current_user(session_of(request))
    except NotAuthenticated:
        return None


def session_role(request: Request) -> str | None:
    """The role the session's principal grants (rights come from nowhere else), or ``None``."""
    principal = session_of(request).principal
    return principal.role if principal is not None else None


def flash(request: Request, level: Level, text: str) -> None:
    """Queue a message for the next page this browser renders."""
    session = session_of(request)
    queued: list[dict[str, Any]] = list(session.get(FLASH_KEY) or [])
    queued.append({"level": level, "text": text})
    session[FLASH_KEY] = queued[-_MAX_FLASHES:]


def pop_flashes(request: Request) -> list[Flash]:
    """Return the queued messages and forget them (a write only when there were some)."""
    session = session_of(request)
    if session.is_new:
        return []
    queued = session.get(FLASH_KEY)
    if not queued:
        return []
    del session[FLASH_KEY]
    result = []
    for item in queued:
        if isinstance(item, dict) and item.get("level") in ("success", "error", "info"):
            result.append(Flash(item["level"], str(item.get("text", ""))))
    return result
