"""The text fields of a posted HTML form, read once and closed.

Every page form posts ``application/x-www-form-urlencoded``, but a client may post the same
names as ``multipart/form-data``, files included. Starlette spools each uploaded file to a
temporary file that stays open until the form is closed, and a handler that only does
``await request.form()`` never closes it (Python then warns, and the descriptor lives until
the garbage collector finds it). :func:`form_fields` reads the fields a handler names inside
the form's context, so the form is closed before the handler goes on; a file posted under a
field's name reads as ``""``, as an absent field does.
"""

from __future__ import annotations

from starlette.requests import Request

__all__ = ["form_fields"]


async def form_fields(request: Request, *names: str) -> dict[str, str]:
    """Return the text of each named field (``""`` when absent or a file); close the form."""
    async with request.form() as form:
        values = {name: form.get(name) for name in names}
    return {name: value if isinstance(value, str) else "" for name, value in values.items()}
