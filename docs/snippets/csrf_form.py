"""CSRF for an HTML form: the token goes into a hidden ``csrf_token`` field."""

from __future__ import annotations

import html
import os

from starlette.applications import Starlette
from starlette.middleware import Middleware
from starlette.requests import Request
from starlette.responses import HTMLResponse, Response
from starlette.routing import Route

from sessionauth import (
    CookieConfig,
    CSRFMiddleware,
    Keyring,
    SessionMiddleware,
    csrf_token,
    open_store,
)
from sessionauth.starlette import session_of

keyring = Keyring.from_string(os.environ["APP_SECRET"])


# --8<-- [start:form]
async def profile_form(request: Request) -> Response:
    """Render the form with a freshly masked token (a new one on every render is fine)."""
    token = csrf_token(session_of(request), keyring)
    return HTMLResponse(
        '<form method="post" action="/profile">'
        f'<input type="hidden" name="csrf_token" value="{html.escape(token)}">'
        '<input name="nickname"><button>Save</button></form>'
    )


async def save_profile(request: Request) -> Response:
    """Only reached when the origin layer and the token both passed."""
    form = await request.form()
    session_of(request)["nickname"] = str(form.get("nickname", ""))
    return HTMLResponse("Saved")


# --8<-- [end:form]

app = Starlette(
    routes=[
        Route("/profile", profile_form),
        Route("/profile", save_profile, methods=["POST"]),
    ],
    middleware=[
        Middleware(
            SessionMiddleware,
            store=open_store("memory://"),
            keyring=keyring,
            cookie=CookieConfig(secure=False),
        ),
        Middleware(CSRFMiddleware, keyring=keyring),
    ],
)
