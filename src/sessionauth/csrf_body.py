"""The request body as the CSRF check sees it: content types, and the ``csrf_token`` form field.

A form cannot set headers, so a browser form sends its token as the ``csrf_token`` field. Reading
it means buffering the body before the application runs (bounded: a larger body gets 413) and
replaying it to the application afterwards, byte for byte. JSON-only endpoints need no field:
a cross-site page cannot send ``application/json`` without a CORS preflight, so the content
type itself is checked (:func:`is_json`).
"""

from __future__ import annotations

from urllib.parse import parse_qsl

from starlette import formparsers
from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.types import Message, Receive, Scope

from sessionauth.origins import single_header

__all__ = [
    "FORM_TYPES",
    "BodyRefused",
    "buffer_body",
    "form_token",
    "is_json",
    "media_type",
    "replay",
]

FORM_TYPES = ("application/x-www-form-urlencoded", "multipart/form-data")
"""The media types a browser form posts, which carry the token as a field."""


class BodyRefused(Exception):
    """The body cannot be read: too large (``status`` 413), or the client left (``None``)."""

    def __init__(self, status: int | None):
        super().__init__(status)
        self.status = status


def media_type(scope: Scope) -> str:
    """Return the request's media type, lower-case without parameters (``""`` if none)."""
    value = single_header(scope, b"content-type", repeated="") or ""
    return value.split(";", 1)[0].strip().lower()


def is_json(scope: Scope) -> bool:
    """Return whether the request's body is JSON, or there is no body at all."""
    if single_header(scope, b"content-type", repeated="") is not None:
        return media_type(scope) == "application/json"
    # No content type passes only without a body (a plain DELETE).
    length = single_header(scope, b"content-length", repeated="")
    te = single_header(scope, b"transfer-encoding", repeated="")
    return te is None and length in (None, "0")


async def buffer_body(scope: Scope, receive: Receive, limit: int) -> bytes:
    """Read the whole request body, refusing one over ``limit`` bytes.

    Raises:
        BodyRefused: 413 for a body (declared or received) over the limit; ``None`` when the
            client disconnected first.
    """
    declared = single_header(scope, b"content-length", repeated="")
    if declared is not None and declared.isdigit() and int(declared) > limit:
        raise BodyRefused(413)
    chunks: list[bytes] = []
    size = 0
    while True:
        message = await receive()
        if message["type"] != "http.request":
            raise BodyRefused(None)
        chunk = message.get("body", b"")
        size += len(chunk)
        if size > limit:
            raise BodyRefused(413)
        chunks.append(chunk)
        if not message.get("more_body", False):
            return b"".join(chunks)


def replay(body: bytes, receive: Receive) -> Receive:
    """Return a ``receive`` that yields the buffered body once, then defers to ``receive``."""
    pending = True

    async def replayed() -> Message:
        nonlocal pending
        if pending:
            pending = False
            return {"type": "http.request", "body": body, "more_body": False}
        return await receive()

    return replayed


async def _disconnected() -> Message:
    return {"type": "http.disconnect"}


async def form_token(scope: Scope, media: str, body: bytes) -> str | None:
    """Return the ``csrf_token`` field of a buffered form body, or ``None``.

    Whatever a parser quirk yields here must still be a valid token, so a disagreement with the
    application's own parser cannot let a forged request through.
    """
    if media == "application/x-www-form-urlencoded":
        try:
            fields = parse_qsl(body.decode("latin-1"), max_num_fields=1000)
        except ValueError:  # too many fields
            return None
        return next((value for name, value in fields if name == "csrf_token"), None)
    # Starlette parses multipart with python-multipart, which any app taking such forms has.
    if getattr(formparsers, "parse_options_header", None) is None:  # pragma: no cover
        return None
    request = Request(scope, replay(body, _disconnected))
    try:
        async with request.form(max_files=100, max_fields=1000) as form:
            value = form.get("csrf_token")
            return value if isinstance(value, str) else None
    except (formparsers.MultiPartException, HTTPException):
        return None
