"""Rendering the HTML pages: the Jinja2 environment, its filters, and the friendly error pages.

Templates live in ``server/templates`` and are rendered with autoescaping on, so every value a
user controls (an email, a user agent) is escaped wherever it lands. Pages load one stylesheet
and one optional script from ``/static`` (:func:`static_files`), nothing from other sites, so
every HTML response can carry a strict ``Content-Security-Policy``.

Error pages never touch the session: they are also what the server shows when the session store
is down (:func:`html_unavailable`) or a form failed the CSRF check (:func:`html_csrf_reject`),
where reading or writing the session would be wrong or impossible.
"""

from __future__ import annotations

import datetime as dt
from http import HTTPStatus
from pathlib import Path
from typing import Any

import jinja2
from starlette.requests import Request
from starlette.responses import HTMLResponse, Response
from starlette.staticfiles import StaticFiles
from starlette.types import Scope

from sessionauth.auth.guards import wants_html
from sessionauth.csrf import json_reject
from sessionauth.errors import StoreUnavailable
from sessionauth.middleware import json_unavailable

__all__ = [
    "SECURITY_HEADERS",
    "html_csrf_reject",
    "html_unavailable",
    "render",
    "render_error",
    "static_files",
]

_HERE = Path(__file__).parent

# Pages use only same-origin CSS and JS, so the policy can forbid everything else: injected
# markup can neither run script nor post a form elsewhere, and no site may frame the pages
# (clickjacking the Revoke and Delete buttons).
SECURITY_HEADERS: dict[str, str] = {
    "Content-Security-Policy": (
        "default-src 'none'; style-src 'self'; script-src 'self'; img-src 'self'; "
        "connect-src 'self'; form-action 'self'; frame-ancestors 'none'; base-uri 'none'"
    ),
    "X-Frame-Options": "DENY",
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "same-origin",
}

_ERROR_TITLES = {
    400: "Bad request",
    401: "Sign-in required",
    403: "Access denied",
    404: "Page not found",
    405: "Method not allowed",
    409: "Conflict",
    413: "Request too large",
    429: "Too many requests",
    503: "Service unavailable",
}
# Said instead of a message that only repeats the status's name ("Not found").
_ERROR_EXPLANATIONS = {
    401: "Please sign in to see this page.",
    403: "Your account is not allowed to see this page.",
    404: "There is nothing at this address. Check the link, or start again from the dashboard.",
    405: "This address does not accept that kind of request.",
    429: "Too many requests in a short time. Wait a little, then try again.",
    503: "The service is briefly unavailable. Please try again in a moment.",
}
_CSRF_MESSAGE = (
    "This form could not be accepted: it came from another site, or the page was too old. "
    "Go back, reload the page and try again."
)
_UNAVAILABLE_MESSAGE = _ERROR_EXPLANATIONS[503]


def utc_time(timestamp: float | None) -> str:
    """Format POSIX seconds as ``2025-01-31 14:05 UTC`` (empty for ``None``)."""
    if timestamp is None:
        return ""
    moment = dt.datetime.fromtimestamp(timestamp, dt.UTC)
    return moment.strftime("%Y-%m-%d %H:%M UTC")


def utc_date(timestamp: float | None) -> str:
    """Format POSIX seconds as the UTC date ``2025-01-31`` (empty for ``None``)."""
    if timestamp is None:
        return ""
    return dt.datetime.fromtimestamp(timestamp, dt.UTC).strftime("%Y-%m-%d")


def iso_time(timestamp: float | None) -> str:
    """Format POSIX seconds as ISO 8601 in UTC, for ``<time datetime>`` attributes."""
    if timestamp is None:
        return ""
    return dt.datetime.fromtimestamp(timestamp, dt.UTC).isoformat(timespec="seconds")


def time_ago(timestamp: float | None, now: float) -> str:
    """Describe how long before ``now`` a moment was: ``just now`` or ``5 minutes ago``."""
    if timestamp is None:
        return ""
    seconds = max(int(now - timestamp), 0)
    if seconds < 60:
        return "just now"
    for size, unit in ((86_400, "day"), (3_600, "hour"), (60, "minute")):
        if seconds >= size:
            count = seconds // size
            return f"{count} {unit}{'' if count == 1 else 's'} ago"
    return "just now"  # pragma: no cover - the loop always returns for seconds >= 60


# Most specific first: Edge and Opera say "Chrome" too, Chrome says "Safari".
_BROWSERS = (
    ("Edg/", "Edge"),
    ("OPR/", "Opera"),
    ("Firefox/", "Firefox"),
    ("HeadlessChrome/", "Headless Chrome"),
    ("Chrome/", "Chrome"),
    ("Safari/", "Safari"),
    ("curl/", "curl"),
    ("python-httpx/", "httpx"),
)
_SYSTEMS = (
    ("Android", "Android"),
    ("iPhone", "iOS"),
    ("iPad", "iPadOS"),
    ("Windows", "Windows"),
    ("Mac OS X", "macOS"),
    ("CrOS", "ChromeOS"),
    ("Linux", "Linux"),
)


def device_name(user_agent: str | None) -> str:
    """Name the browser and system of a user agent string, e.g. ``Firefox on Linux``."""
    if not user_agent:
        return "Unknown device"
    browser = next((name for key, name in _BROWSERS if key in user_agent), None)
    system = next((name for key, name in _SYSTEMS if key in user_agent), None)
    if browser and system:
        return f"{browser} on {system}"
    return browser or system or "Unknown browser"


def _environment() -> jinja2.Environment:
    env = jinja2.Environment(
        loader=jinja2.FileSystemLoader(_HERE / "templates"),
        autoescape=True,
        undefined=jinja2.StrictUndefined,
        trim_blocks=True,
        lstrip_blocks=True,
    )
    env.filters["utc"] = utc_time
    env.filters["utc_date"] = utc_date
    env.filters["iso"] = iso_time
    env.filters["device"] = device_name
    return env


templates = _environment()


def static_files() -> StaticFiles:
    """The stylesheet and script the pages load; mount it at ``/static`` named ``static``."""
    return StaticFiles(directory=_HERE / "static")


def render(
    template: str,
    context: dict[str, Any],
    *,
    status: int = 200,
    headers: dict[str, str] | None = None,
) -> HTMLResponse:
    """Render ``template`` with ``context`` into a response carrying the security headers."""
    html = templates.get_template(template).render(context)
    return HTMLResponse(html, status, headers={**SECURITY_HEADERS, **(headers or {})})


def _error_context(status: int, message: str) -> dict[str, Any]:
    title = _ERROR_TITLES.get(status, "Something went wrong")
    bare = message.strip().rstrip(".").casefold()
    try:
        phrase = HTTPStatus(status).phrase.casefold()
    except ValueError:
        phrase = ""
    if bare in ("", title.casefold(), phrase) and status in _ERROR_EXPLANATIONS:
        message = _ERROR_EXPLANATIONS[status]
    return {
        "status": status,
        "title": title,
        "message": message,
        "user": None,
        "csrf": "",
        "flashes": [],
    }


def render_error(
    request: Request | None, status: int, message: str, *, headers: dict[str, str] | None = None
) -> HTMLResponse:
    """Return the friendly error page for ``status`` (401, 403, 404, 429, 503…).

    Use it in exception handlers for requests that want HTML (``guards.wants_html``). The page
    never reads the session, so it is safe to show when the store is down.

    Args:
        request: The request that failed (unused today; kept for logging or localisation).
        status: The HTTP status to answer with.
        message: One sentence for the reader; it is escaped.
        headers: Extra headers, such as ``Retry-After``.
    """
    del request
    return render("error.html", _error_context(status, message), status=status, headers=headers)


def html_csrf_reject(scope: Scope, reason: str) -> Response:
    """``CSRFMiddleware(on_reject=...)``: a friendly 403 page for browsers, JSON for the rest."""
    if not wants_html(Request(scope)):
        return json_reject(scope, reason)
    return render_error(None, 403, _CSRF_MESSAGE, headers={"Cache-Control": "no-store"})


def html_unavailable(scope: Scope, exc: StoreUnavailable) -> Response:
    """``SessionMiddleware(on_unavailable=...)``: a 503 page for browsers, JSON for the rest."""
    if not wants_html(Request(scope)):
        return json_unavailable(scope, exc)
    headers = {"Cache-Control": "no-store", "Retry-After": str(exc.retry_after)}
    return render_error(None, 503, _UNAVAILABLE_MESSAGE, headers=headers)
