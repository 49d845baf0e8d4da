"""Posted forms are read as text and closed, whatever the client posted.

A multipart post spools each file to a temporary file that stays open until the form is
closed: read with a bare ``await request.form()``, every such post leaked one (Python warned
"Unclosed file" when the collector found it). :func:`form_fields` reads inside the form's
context; the source check keeps every page handler on it.
"""

from __future__ import annotations

import gc
import re
import warnings
from pathlib import Path
from typing import Any

import httpx
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse
from starlette.routing import Route

from sessionauth.server.form_fields import form_fields

SERVER = Path(__file__).resolve().parents[2] / "src" / "sessionauth" / "server"


async def test_files_read_as_empty_text_and_are_closed() -> None:
    """Text fields come back as posted, a file or an absent field as "", and the files close."""
    seen: list[Any] = []

    async def echo(request: Request) -> JSONResponse:
        fields = await form_fields(request, "email", "password", "missing")
        seen.extend(value for _, value in request._form.multi_items())  # type: ignore[union-attr]
        return JSONResponse(fields)

    app = Starlette(routes=[Route("/", echo, methods=["POST"])])
    transport = httpx.ASGITransport(app=app)
    async with httpx.AsyncClient(transport=transport, base_url="http://test") as client:
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            response = await client.post(
                "/",
                data={"email": "ann@example.com"},
                files={"password": ("p.txt", b"x" * 9000, "text/plain")},
            )
            gc.collect()
    assert response.json() == {"email": "ann@example.com", "password": "", "missing": ""}
    uploads = [value for value in seen if not isinstance(value, str)]
    assert len(uploads) == 1
    assert uploads[0].file.closed
    assert not [w for w in caught if issubclass(w.category, ResourceWarning)]


def test_no_page_handler_reads_a_form_it_does_not_close() -> None:
    """Outside form_fields, a form is only ever read as ``async with request.form()``."""
    bare = re.compile(r"await\s+request\.form\(")
    offenders = [
        f"{path.name}:{number}"
        for path in sorted(SERVER.rglob("*.py"))
        if path.name != "form_fields.py"
        for number, line in enumerate(path.read_text().splitlines(), start=1)
        if bare.search(line)
    ]
    assert offenders == []
