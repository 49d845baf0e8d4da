"""Schemathesis over the served OpenAPI schema: no generated request makes the API fail.

The schema is the one the app serves (``/openapi.json``, loaded through the ASGI app). Every
operation is fuzzed twice, each run against an app of its own so the login throttle of one
cannot starve the other:

* anonymously, as the internet sees the API;
* as a signed-in administrator with a valid CSRF token, so the generated bodies, paths and
  queries reach the handlers behind the guards and the CSRF layer.

Each response must not be a 5xx (``not_a_server_error``), must have a documented status and
content type, and must match the documented schema for its status. One inaccuracy is left in
the schema: FastAPI documents a 422 ``HTTPValidationError`` on every operation with parameters,
which the server never sends (validation errors are 400 ``{"error": ...}``, documented too);
no check can see a documented status that never occurs.

Schemathesis runs the app's lifespan itself, on its own event loop thread, when it loads the
schema; the fixtures stop it at the end. Each admin request signs in afresh, as a new
administrator (added out of band) once generated requests have disabled, demoted, deleted or
throttled the previous one.

Operations are fuzzed with ``operation.as_strategy()`` (valid and invalid data, 30 examples per
operation and run), one pytest subtest each, rather than ``schemathesis.pytest.from_fixture``:
its lazy parametrisation sets ``Node._nodeid``, which pytest 9.2 no longer has.
"""

from __future__ import annotations

import asyncio
import os
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
import schemathesis
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from schemathesis import GenerationMode
from schemathesis.checks import not_a_server_error
from schemathesis.python import asgi
from schemathesis.specs.openapi.checks import (
    content_type_conformance,
    response_schema_conformance,
    status_code_conformance,
)

from sessionauth.auth.passwords import PasswordHasher
from sessionauth.server.app import create_app
from sessionauth.server.settings import Settings
from tests.support.backends import user_store

PASSWORD = "correct horse battery"
CHECKS = [
    not_a_server_error,
    response_schema_conformance,
    status_code_conformance,
    content_type_conformance,
]
# Derandomised: the same examples every run, so CI is reproducible (raise max_examples or drop
# derandomize locally to explore further).
FUZZ_SETTINGS = settings(
    max_examples=30,
    derandomize=True,
    deadline=None,
    database=None,
    suppress_health_check=list(HealthCheck),
)


@dataclass
class Served:
    """An app whose lifespan schemathesis runs, its schema, and its users database."""

    schema: schemathesis.BaseSchema
    database_url: str
    admins: int = 1

    @property
    def admin_email(self) -> str:
        return _admin_email(self.admins)

    def new_admin(self) -> None:
        """Add a fresh administrator out of band (a second connection to the database file).

        A fuzzer with admin rights deletes, disables or demotes its own account sooner or
        later, and wrong current passwords sent to POST /password throttle it: rather than
        repair that account, the next request signs in as a new one.
        """
        self.admins += 1
        asyncio.run(_add_admin(self.database_url, self.admin_email))


def _admin_email(number: int) -> str:
    return f"fuzz-admin-{number}@example.com"


async def _add_admin(database_url: str, email: str) -> None:
    users = user_store(database_url)
    try:
        password_hash = await PasswordHasher.for_tests().hash(PASSWORD)
        await users.create(email, password_hash, role="admin")
    finally:
        await users.aclose()


@pytest.fixture(scope="module")
def _clean_environment() -> Iterator[None]:
    with pytest.MonkeyPatch.context() as patch:
        for name in list(os.environ):
            if name.startswith("SESSIONAUTH_"):
                patch.delenv(name)
        yield


def _serve(directory: Path) -> Served:
    database_url = f"sqlite:///{directory / 'users.db'}"
    # Before the lifespan starts, so the development bootstrap sees accounts and creates none.
    asyncio.run(_add_admin(database_url, _admin_email(1)))
    app = create_app(
        Settings(
            env="development",
            database_url=database_url,
            data_dir=directory / "data",
            secret="s" * 40,
            allowed_origins=("https://app.example.com",),
            signup="open",
        ),
        hasher=PasswordHasher.for_tests(),
    )
    # Loading through the app starts its lifespan (stores opened) on schemathesis's loop.
    return Served(schemathesis.openapi.from_asgi("/openapi.json", app), database_url)


@pytest.fixture(scope="module")
def anonymous_api(
    _clean_environment: None, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[schemathesis.BaseSchema]:
    served = _serve(tmp_path_factory.mktemp("anonymous"))
    yield served.schema
    asgi.shutdown_lifespans()


@pytest.fixture(scope="module")
def admin_served(
    _clean_environment: None, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Served]:
    served = _serve(tmp_path_factory.mktemp("admin"))
    yield served
    asgi.shutdown_lifespans()


def _assert_fuzzed_answers_conform(
    schema: schemathesis.BaseSchema,
    subtests: pytest.Subtests,
    send: Callable[[schemathesis.Case], Any],
    *,
    skip: frozenset[str] = frozenset(),
) -> None:
    """Fuzz every operation of ``schema`` (valid and invalid data), one subtest each."""
    labels = []
    for result in schema.get_all_operations():
        operation = result.ok()
        labels.append(operation.label)
        if operation.label in skip:
            continue
        strategy = st.one_of(
            operation.as_strategy(GenerationMode.POSITIVE),
            operation.as_strategy(GenerationMode.NEGATIVE),
        )

        @FUZZ_SETTINGS
        @given(case=strategy)
        def fuzz(case: schemathesis.Case) -> None:
            response = send(case)
            case.validate_response(response, checks=CHECKS)

        with subtests.test(msg=operation.label):
            fuzz()
    # Guard the harness itself: the whole API was there to fuzz.
    assert {
        "POST /login",
        "DELETE /users/{user_id}",
        "POST /password",
        "POST /signup",
        "POST /verify",
        "POST /password/reset",
        "POST /login/mfa",
        "POST /mfa/totp/setup",
        "POST /mfa/totp/confirm",
        "POST /mfa/totp/disable",
        "POST /mfa/recovery-codes",
        "GET /passkeys",
        "POST /passkeys/register/options",
        "POST /passkeys/register",
        "PATCH /passkeys/{credential_id}",
        "DELETE /passkeys/{credential_id}",
        "POST /passkeys/login/options",
        "POST /passkeys/login",
    } <= set(labels)


# Every operation fuzzed in one test: more than the suite's 120 s per test on a busy machine.
@pytest.mark.timeout(600)
def test_anonymous_requests_never_fail(
    anonymous_api: schemathesis.BaseSchema, subtests: pytest.Subtests
) -> None:
    """Any generated request without a session: no 5xx, documented answers conform."""
    _assert_fuzzed_answers_conform(anonymous_api, subtests, lambda case: case.call())


def _admin_session(served: Served) -> tuple[asgi.ASGIClient, str]:
    """A client signed in as an administrator (a new one if needed), and its CSRF token."""
    for _ in range(2):
        client = asgi.get_client(served.schema.app)
        credentials = {"email": served.admin_email, "password": PASSWORD}
        login = client.post("/login", json=credentials)
        if login.status_code == 200 and login.json()["user"]["role"] == "admin":
            token = client.get("/csrf-token").json()["csrfToken"]
            return client, token
        client.close()
        served.new_admin()
    raise AssertionError(f"cannot sign an administrator in: {login.status_code} {login.text}")


@pytest.mark.timeout(600)
def test_admin_requests_never_fail(admin_served: Served, subtests: pytest.Subtests) -> None:
    """Any generated request as a signed-in admin with a CSRF token: no 5xx, answers conform."""
    schemes = admin_served.schema.raw_schema["components"]["securitySchemes"]
    cookie_name = schemes["sessionCookie"]["name"]
    answered: list[tuple[str, int]] = []

    def send(case: schemathesis.Case) -> Any:
        # The schema declares the session cookie, so schemathesis generates one: it would
        # replace the administrator's and leave every guarded route anonymous.
        if case.cookies:
            case.cookies.pop(cookie_name, None)
        client, token = _admin_session(admin_served)
        with client:
            response = case.call(session=client, headers={"X-CSRF-Token": token})
        answered.append((case.operation.label, response.status_code))
        return response

    # POST /login is fuzzed anonymously: here its failures would throttle the admin's logins.
    _assert_fuzzed_answers_conform(
        admin_served.schema, subtests, send, skip=frozenset({"POST /login"})
    )
    # Guard the harness: the fuzzed requests did reach the guarded handlers as an admin.
    assert ("GET /users", 200) in answered
    assert ("GET /sessions", 200) in answered
    assert ("GET /passkeys", 200) in answered
    assert ("POST /verify/request", 409) in answered  # the administrator's address is verified
