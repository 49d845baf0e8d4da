"""A deeply nested passkey response is an invalid passkey (found by an attack review: a 500).

``Passkeys.authenticate`` promises ``InvalidCode`` "for any failure", and ``Passkeys.register``
``PasskeyRejected``: both parse the browser's JSON (``_fields``; py_webauthn's parser) and catch
``ValueError``/``KeyError``/``TypeError`` only. ``json.loads`` of a body nested 100 000 deep
raises ``RecursionError``, which passes through as a 500 in any route built on them. The
parsing happens before any store is touched, so the in-process stores suffice here.
"""

from __future__ import annotations

import pytest

from sessionauth.errors import InvalidCode, PasskeyRejected
from sessionauth.session import Session
from tests.support.webauthn import SoftAuthenticator
from tests.unit.test_passkeys import USER, Env

NESTED = "[" * 100_000 + "]" * 100_000


async def test_a_nested_assertion_is_an_invalid_passkey() -> None:
    """Sign-in with a deeply nested body: InvalidCode, not RecursionError."""
    env = Env()
    await env.register(SoftAuthenticator())
    env.passkeys.authentication_options()
    with pytest.raises(InvalidCode):
        await env.passkeys.authenticate(NESTED)


async def test_a_nested_registration_is_rejected() -> None:
    """Registration with a deeply nested body: PasskeyRejected, not RecursionError."""
    env = Env()
    session = Session()
    await env.passkeys.registration_options(session, user_id=USER, user_name="ann@example.com")
    with pytest.raises(PasskeyRejected):
        await env.passkeys.register(session, user_id=USER, credential=NESTED, name="Laptop")
