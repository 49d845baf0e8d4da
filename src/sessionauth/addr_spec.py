"""One email address: the single ``local@domain`` form (RFC 5322 addr-spec) and nothing else.

Mail libraries parse a recipient header generously: ``a@x, b@y`` is two recipients and
``a@x <b>@y`` is a display name with a different mailbox. An address that reaches a store or a
``To`` header must therefore be exactly one addr-spec, so what is stored, what is shown and where
mail goes are the same address.
"""

from __future__ import annotations

from typing import Final

__all__ = ["MAX_EMAIL_LENGTH", "addr_spec_problem"]

MAX_EMAIL_LENGTH: Final = 254
"""The longest address (RFC 5321's path limit minus the angle brackets)."""

_MAX_LOCAL_LENGTH: Final = 64
_MAX_LABEL_LENGTH: Final = 63
# Characters that make a header parser see a list, a display name, a comment, a quoted string
# or a domain literal: none belongs in the plain addresses accounts use.
_SPECIALS: Final = frozenset(',;<>()"[]\\:')


def _label_ok(label: str) -> bool:
    # Letters (any script, so an IDNA domain in Unicode form), digits and inner hyphens.
    return (
        0 < len(label) <= _MAX_LABEL_LENGTH
        and all(char.isalnum() or char == "-" for char in label)
        and not label.startswith("-")
        and not label.endswith("-")
    )


def addr_spec_problem(address: str) -> str | None:
    r"""Return why ``address`` is not one plain ``local@domain`` address, or ``None`` if it is.

    Accepted: no whitespace, control characters or any of ``,;<>()"[]\:``; exactly one ``@``;
    a local part of 1 to 64 characters; a domain of dot-separated labels (letters, digits,
    inner hyphens, 1 to 63 characters each); at most 254 characters in all.
    """
    if len(address) > MAX_EMAIL_LENGTH:
        return f"email address longer than {MAX_EMAIL_LENGTH} characters"
    if any(char.isspace() or not char.isprintable() for char in address):
        return "email address contains whitespace or control characters"
    if any(char in _SPECIALS for char in address):
        return "email address must be a single plain address (no name, list, comment or quotes)"
    if address.count("@") > 1:
        return "email address needs exactly one '@'"
    local, at, domain = address.partition("@")
    if not (at and local and domain):
        return "email address needs text on both sides of an '@'"
    if len(local) > _MAX_LOCAL_LENGTH:
        return f"the part before '@' must be at most {_MAX_LOCAL_LENGTH} characters"
    if not all(_label_ok(label) for label in domain.split(".")):
        return "the part after '@' must be a domain name (letters, digits, hyphens, dots)"
    return None
