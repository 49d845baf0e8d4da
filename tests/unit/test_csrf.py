"""CSRF tokens, origin parsing, and CSRFMiddleware inside SessionMiddleware, driven in process."""

from __future__ import annotations

import base64
import json
import logging
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from typing import Any

import httpx
import pytest
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import HTMLResponse, JSONResponse, Response
from starlette.routing import Route

from sessionauth import csrf
from sessionauth.cors import TrustedCORSMiddleware
from sessionauth.csrf import CSRFMiddleware, csrf_token, verify_csrf_token
from sessionauth.errors import ConfigurationError
from sessionauth.middleware import SessionMiddleware
from sessionauth.origins import (
    normalize_origin,
    referer_origin,
    request_origin,
    validate_origins,
)
from sessionauth.policy import TimeoutPolicy
from sessionauth.session import Session
from sessionauth.stores.memory import MemoryStore
from sessionauth.tokens import Keyring, new_token, storage_id
from tests.support.clock import FakeClock

KEY_OLD = "o" * 40
KEY_NEW = "n" * 40
KEYRING = Keyring([KEY_NEW])
SITE = "https://testserver"
TRUSTED = "https://app.testserver"
NAME = "__Host-session"


# -- a small app: the routes a real server has, behind Session + CSRF middleware ----------


async def issue_token(request: Request) -> Response:
    return JSONResponse({"csrfToken": csrf_token(request.session, KEYRING)})


async def login(request: Request) -> Response:
    request.session.set_user("1")
    return JSONResponse({"success": True})


async def echo(request: Request) -> Response:
    """Return what the application itself reads from the body, so replay can be checked."""
    media_type = request.headers.get("content-type", "").split(";")[0]
    if media_type in ("application/x-www-form-urlencoded", "multipart/form-data"):
        async with request.form() as form:
            fields: dict[str, Any] = {}
            for key, value in form.multi_items():
                if isinstance(value, str):
                    fields[key] = value
                else:
                    fields[key] = {"file": value.filename, "size": len(await value.read())}
        return JSONResponse({"form": fields})
    return JSONResponse({"body": (await request.body()).decode()})


ROUTES = [
    Route("/csrf-token", issue_token),
    Route("/login", login, methods=["POST"]),
    Route("/echo", echo, methods=["POST", "PUT", "PATCH", "DELETE"]),
    Route("/api/echo", echo, methods=["POST", "DELETE"]),
    Route("/hooks/in", echo, methods=["POST"]),
]


def build_app(*, cors: bool = False, **options: Any) -> Any:
    """Session(CSRF(app)), optionally inside TrustedCORSMiddleware, trusting ``TRUSTED``."""
    options.setdefault("trusted_origins", [TRUSTED])
    protected = CSRFMiddleware(Starlette(routes=ROUTES), keyring=KEYRING, **options)
    app: Any = SessionMiddleware(protected, store=MemoryStore(), keyring=KEYRING)
    return TrustedCORSMiddleware(app, trusted_origins=[TRUSTED]) if cors else app


@dataclass
class Browser:
    """A client that keeps its cookies by name and sends ``Origin: origin`` by default."""

    client: httpx.AsyncClient
    origin: str | None = SITE
    cookies: dict[str, str] = field(default_factory=dict)

    @property
    def cookie(self) -> str | None:
        """The session cookie's value, if the browser holds one."""
        return self.cookies.get(NAME)

    @cookie.setter
    def cookie(self, value: str | None) -> None:
        if value is None:
            self.cookies.pop(NAME, None)
        else:
            self.cookies[NAME] = value

    async def request(
        self, method: str, path: str, *, headers: Any = None, **kwargs: Any
    ) -> httpx.Response:
        """Send a request with the cookies and default Origin; remember what the answer sets."""
        sent: list[tuple[str, str]] = []
        if self.origin is not None:
            sent.append(("origin", self.origin))
        if self.cookies:
            sent.append(("cookie", "; ".join(f"{k}={v}" for k, v in self.cookies.items())))
        items = headers.items() if isinstance(headers, dict) else headers or []
        names = {key.lower() for key, _ in items}
        sent = [h for h in sent if h[0] not in names] + list(items)
        response = await self.client.request(method, path, headers=sent, **kwargs)
        self.client.cookies.clear()  # this class alone decides which cookie goes out
        for header in response.headers.get_list("set-cookie"):
            name, _, rest = header.partition("=")
            value = rest.split(";")[0]
            if value and "Max-Age=0" not in header:
                self.cookies[name] = value
            else:
                self.cookies.pop(name, None)
        return response

    async def token(self) -> str:
        """Fetch a token (bound to the session, or to a pre-session cookie without one)."""
        response = await self.request("GET", "/csrf-token")
        assert response.status_code == 200
        token: str = response.json()["csrfToken"]
        return token

    async def post(self, path: str = "/echo", **kwargs: Any) -> httpx.Response:
        """POST ``path``."""
        return await self.request("POST", path, **kwargs)


@asynccontextmanager
async def browsers() -> AsyncIterator[Callable[..., Browser]]:
    """Yield a factory of browsers on fresh apps; close every client afterwards."""
    clients: list[httpx.AsyncClient] = []

    def factory(base_url: str = SITE, **options: Any) -> Browser:
        transport = httpx.ASGITransport(app=build_app(**options))
        client = httpx.AsyncClient(transport=transport, base_url=base_url)
        clients.append(client)
        return Browser(client, origin=base_url)

    try:
        yield factory
    finally:
        for client in clients:
            await client.aclose()


@pytest.fixture
async def make_browser() -> AsyncIterator[Callable[..., Browser]]:
    async with browsers() as factory:
        yield factory


@pytest.fixture
def browser(make_browser: Callable[..., Browser]) -> Browser:
    return make_browser()


def stored_session() -> Session:
    return Session(token=(token := new_token()), handle=storage_id(token))


# -- tokens ---------------------------------------------------------------------------------


def test_tokens_are_masked_differently_per_call_yet_all_verify() -> None:
    """Two tokens for one session differ (BREACH) and both verify."""
    session = stored_session()
    first, second = csrf_token(session, KEYRING), csrf_token(session, KEYRING)
    assert first != second
    assert len(first) == csrf.TOKEN_LENGTH
    assert verify_csrf_token(session, KEYRING, first)
    assert verify_csrf_token(session, KEYRING, second)


def _flip(token: str, index: int) -> str:
    return token[:index] + ("A" if token[index] != "A" else "B") + token[index + 1 :]


@pytest.mark.parametrize(
    "mangle",
    [
        pytest.param(lambda t: _flip(t, 10), id="tampered-mask"),
        pytest.param(lambda t: _flip(t, 60), id="tampered-secret"),
        pytest.param(lambda t: t[:-1], id="short"),
        pytest.param(lambda t: t + "A", id="long"),
        pytest.param(lambda t: t[:-2] + "+/", id="not-base64url"),
        pytest.param(lambda t: t[:-1] + "é", id="non-ascii"),
        pytest.param(lambda t: t[:-2] + "==", id="padding"),
        pytest.param(lambda t: "", id="empty"),
        pytest.param(lambda t: t[:43], id="unmasked-length"),
    ],
)
def test_malformed_or_tampered_tokens_are_refused(mangle: Callable[[str], str]) -> None:
    """Any change to a valid token, or a token of the wrong shape, fails verification."""
    session = stored_session()
    token = csrf_token(session, KEYRING)
    assert not verify_csrf_token(session, KEYRING, mangle(token))


def test_non_canonical_final_character_is_refused() -> None:
    """A token differing only in the last character's unused bits is refused, not decoded."""
    session = stored_session()
    token = csrf_token(session, KEYRING)
    alphabet = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_"
    last = alphabet.index(token[-1])
    variant = token[:-1] + alphabet[last ^ 1]  # same top two bits, different padding bits
    assert not verify_csrf_token(session, KEYRING, variant)


def test_token_of_another_session_is_refused() -> None:
    """A token issued to one session is worthless in another."""
    mine, theirs = stored_session(), stored_session()
    assert not verify_csrf_token(mine, KEYRING, csrf_token(theirs, KEYRING))


def test_regeneration_invalidates_earlier_tokens() -> None:
    """After regenerate() (as login does) the old token fails and a new one verifies."""
    session = stored_session()
    old = csrf_token(session, KEYRING)
    session.regenerate()
    assert not verify_csrf_token(session, KEYRING, old)
    assert verify_csrf_token(session, KEYRING, csrf_token(session, KEYRING))


async def test_a_form_rendered_before_a_renewal_posts_after_it() -> None:
    """A renewal keeps the CSRF seed: a page's token still verifies under the renewed cookie.

    Before, the secret was derived from the session token, so every renewal refused the forms
    open in the user's tabs (``CSRF token incorrect``).
    """
    clock = FakeClock()
    protected = CSRFMiddleware(Starlette(routes=ROUTES), keyring=KEYRING, trusted_origins=[TRUSTED])
    app = SessionMiddleware(
        protected,
        store=MemoryStore(clock=clock),
        keyring=KEYRING,
        policy=TimeoutPolicy(renewal_interval=60),
        clock=clock,
    )
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url=SITE) as client:
        browser = Browser(client)
        before_login = await browser.token()
        assert (await browser.post("/login", headers={"csrf-token": before_login})).is_success
        form = await browser.token()  # the form page
        signed_in = browser.cookie
        clock.advance(61)
        await browser.token()  # another tab's request renews the session
        assert browser.cookie not in (None, signed_in)
        assert (await browser.post(headers={"csrf-token": form}, content="x")).status_code == 200
        refused = await browser.post(headers={"csrf-token": before_login}, content="x")
        assert refused.status_code == 403  # the login's new seed still ended the older tokens


def test_token_made_under_the_old_key_verifies_after_rotation() -> None:
    """Prepending a new key keeps old tokens valid until the old key is dropped."""
    session = stored_session()
    token = csrf_token(session, Keyring([KEY_OLD]))
    assert verify_csrf_token(session, Keyring([KEY_NEW, KEY_OLD]), token)
    assert not verify_csrf_token(session, Keyring([KEY_NEW]), token)


def test_token_is_not_a_mac_under_another_purpose() -> None:
    """A value built from the cookie subkey instead of the csrf one does not verify."""
    session = stored_session()
    secret = session.bound_secret(KEYRING.subkeys("cookie")[0])
    forged = csrf._xor(bytes(32), secret)
    token = base64.urlsafe_b64encode(bytes(32) + forged).rstrip(b"=").decode()
    assert not verify_csrf_token(session, KEYRING, token)


def test_new_session_that_issued_nothing_verifies_nothing_and_stays_unstored() -> None:
    """Checking a token against a fresh session fails without marking it to be kept."""
    session = Session()
    other = csrf_token(stored_session(), KEYRING)
    assert not verify_csrf_token(session, KEYRING, other)
    assert not session.will_be_stored


def test_asking_for_a_token_leaves_a_new_session_unstored() -> None:
    """A new, empty session's token is bound to a minted pre-session, not to a record."""
    session = Session()
    token = csrf_token(session, KEYRING)
    assert not session.will_be_stored
    assert session.presession.minted
    assert verify_csrf_token(session, KEYRING, token)
    assert not verify_csrf_token(Session(), KEYRING, token)  # without that pre-session cookie


# -- origins --------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        ("https://example.com", "https://example.com"),
        ("HTTPS://Example.COM:443", "https://example.com"),
        ("http://example.com:80", "http://example.com"),
        ("http://example.com:8080", "http://example.com:8080"),
        ("http://[::1]:8000", "http://[::1]:8000"),
        ("https://example.com/", None),
        ("https://example.com?", None),
        ("https://example.com#", None),
        ("https://user@example.com", None),
        ("https://example.com:99999", None),
        ("https://exa\tmple.com", None),
        ("ftp://example.com", None),
        ("null", None),
        ("", None),
    ],
)
def test_origins_normalise_strictly(value: str, expected: str | None) -> None:
    """Scheme/host case and default ports normalise; anything beyond an origin is None."""
    assert normalize_origin(value) == expected


def test_referer_origin_takes_the_url_authority() -> None:
    """A Referer's origin ignores its path but refuses user info and other schemes."""
    assert referer_origin("https://Example.com/a/b?c#d") == "https://example.com"
    assert referer_origin("https://example.com@evil.com/") is None
    assert referer_origin("javascript:alert(1)") is None


@pytest.mark.parametrize(
    ("scope", "expected"),
    [
        ({"scheme": "https", "headers": [(b"host", b"Example.com:443")]}, "https://example.com"),
        (
            {"scheme": "http", "headers": [], "server": ("example.com", 8000)},
            "http://example.com:8000",
        ),
        ({"scheme": "http", "headers": [], "server": ("::1", 80)}, "http://[::1]"),
        ({"scheme": "https", "headers": [(b"host", b"a.com"), (b"host", b"b.com")]}, None),
        ({"scheme": "https", "headers": [(b"host", b"a.com/x")]}, None),
        ({"scheme": "https", "headers": []}, None),
    ],
)
def test_request_origin_comes_from_scheme_and_host(
    scope: dict[str, Any], expected: str | None
) -> None:
    """The site's own origin is the scheme plus Host (or the server), and never ambiguous."""
    assert request_origin(scope) == expected


@pytest.mark.parametrize(
    "origin",
    [
        "*",
        "https://*.example.com",
        "https://example.com/",
        "https://example.com/app",
        "ftp://example.com",
        "example.com",
        "null",
        "https://user@example.com",
    ],
)
def test_validate_origins_refuses_unsafe_entries(origin: str) -> None:
    """Wildcards, paths, trailing slashes, other schemes and bare hosts fail at start-up."""
    with pytest.raises(ConfigurationError):
        validate_origins([origin])


def test_validate_origins_normalises_and_refuses_a_bare_string() -> None:
    """Entries come back normalised; a single string (iterated by character) is refused."""
    assert validate_origins([" HTTPS://A.example:443 "]) == {"https://a.example"}
    with pytest.raises(ConfigurationError):
        validate_origins("https://a.example")


# -- the middleware -------------------------------------------------------------------------


async def test_safe_methods_pass_without_any_check(browser: Browser) -> None:
    """GET, HEAD and OPTIONS pass even when marked cross-site and without a token."""
    browser.origin = "https://evil.example"
    for method in ("GET", "HEAD", "OPTIONS"):
        response = await browser.request(
            method, "/csrf-token", headers={"sec-fetch-site": "cross-site"}
        )
        assert response.status_code in (200, 405)
        assert response.status_code != 403


async def test_non_http_scopes_pass_through() -> None:
    """Lifespan and websocket scopes reach the application untouched."""
    seen: list[str] = []

    async def app(scope: dict[str, Any], receive: Any, send: Any) -> None:
        seen.append(scope["type"])

    middleware = CSRFMiddleware(app, keyring=KEYRING)
    cors = TrustedCORSMiddleware(app, trusted_origins=[TRUSTED])
    await middleware({"type": "lifespan"}, None, None)  # type: ignore[arg-type]
    await middleware({"type": "websocket", "headers": []}, None, None)  # type: ignore[arg-type]
    await cors({"type": "lifespan"}, None, None)  # type: ignore[arg-type]
    assert seen == ["lifespan", "websocket", "lifespan"]


async def test_missing_session_middleware_is_a_configuration_error() -> None:
    """Installed outside SessionMiddleware, the middleware fails loudly, never open."""

    async def app(scope: dict[str, Any], receive: Any, send: Any) -> None:
        raise AssertionError("the application must not run")

    middleware = CSRFMiddleware(app, keyring=KEYRING)
    scope = {"type": "http", "method": "POST", "path": "/", "headers": []}
    with pytest.raises(ConfigurationError):
        await middleware(scope, None, None)  # type: ignore[arg-type]


@pytest.mark.parametrize(
    ("reason", "headers", "with_session"),
    [
        (csrf.REASON_CROSS_SITE, {"sec-fetch-site": "cross-site"}, False),
        (csrf.REASON_BAD_ORIGIN, {"origin": "https://evil.example"}, False),
        (csrf.REASON_BAD_REFERER, {"referer": "https://evil.example/page"}, False),
        (csrf.REASON_NO_REFERER, {}, False),
        (csrf.REASON_NO_TOKEN, {"origin": SITE}, True),
        (csrf.REASON_BAD_TOKEN, {"origin": SITE, "csrf-token": "x" * 86}, True),
    ],
)
async def test_every_reason_is_reported_in_body_and_log(
    make_browser: Callable[..., Browser],
    caplog: pytest.LogCaptureFixture,
    reason: str,
    headers: dict[str, str],
    with_session: bool,
) -> None:
    """Each rejection answers 403 with its named reason and logs it, without token or cookie."""
    browser = make_browser()
    browser.origin = None
    if with_session:
        await browser.token()
    with caplog.at_level(logging.WARNING, logger="sessionauth.security"):
        response = await browser.post(headers=headers, content=b"secret-body")
    assert response.status_code == 403
    assert response.json() == {"error": "CSRF check failed", "reason": reason}
    assert response.headers["cache-control"] == "no-store"
    records = [r for r in caplog.records if r.name == "sessionauth.security"]
    assert len(records) == 1
    message = records[0].getMessage()
    assert reason in message
    assert "POST" in message
    assert "/echo" in message
    assert "127.0.0.1" in message
    assert "x" * 86 not in message
    assert browser.cookie is None or browser.cookie not in message


@pytest.mark.parametrize("method", ["POST", "PUT", "PATCH", "DELETE", "PURGE"])
async def test_every_unsafe_method_needs_the_token(browser: Browser, method: str) -> None:
    """Unsafe and unknown methods are refused without a token and accepted with one."""
    token = await browser.token()
    refused = await browser.request(method, "/echo")
    assert refused.status_code == 403
    assert refused.json()["reason"] == csrf.REASON_NO_TOKEN
    accepted = await browser.request(method, "/echo", headers={"csrf-token": token})
    assert accepted.status_code == (405 if method == "PURGE" else 200)


@pytest.mark.parametrize("header", ["CSRF-Token", "X-CSRF-Token"])
async def test_both_token_headers_are_accepted(browser: Browser, header: str) -> None:
    """The token is read from either header name."""
    token = await browser.token()
    response = await browser.post(headers={header: token}, content=b"payload")
    assert response.status_code == 200
    assert response.json() == {"body": "payload"}


async def test_form_field_is_accepted_and_the_app_reads_the_whole_body(browser: Browser) -> None:
    """A urlencoded csrf_token passes, and the app still sees every field (replay works)."""
    token = await browser.token()
    fields = {"csrf_token": token, "amount": "100", "note": "n" * 50_000}
    response = await browser.post(data=fields)
    assert response.status_code == 200
    assert response.json() == {"form": fields}


async def test_multipart_field_is_accepted_and_files_arrive_intact(browser: Browser) -> None:
    """A multipart csrf_token passes, and the app still reads the fields and the file."""
    token = await browser.token()
    response = await browser.post(
        data={"csrf_token": token, "amount": "7"},
        files={"upload": ("a.bin", b"\x00" * 20_000, "application/octet-stream")},
    )
    assert response.status_code == 200
    assert response.json() == {
        "form": {"csrf_token": token, "amount": "7", "upload": {"file": "a.bin", "size": 20_000}}
    }


async def test_multipart_token_sent_as_a_file_is_not_a_token(browser: Browser) -> None:
    """A file part named csrf_token does not count as the token field."""
    token = await browser.token()
    response = await browser.post(files={"csrf_token": ("t.txt", token.encode(), "text/plain")})
    assert response.status_code == 403
    assert response.json()["reason"] == csrf.REASON_NO_TOKEN


@pytest.mark.parametrize(
    ("content_type", "body"),
    [
        ("multipart/form-data; boundary=xyz", b"--xyz\r\ngarbage without headers"),
        ("multipart/form-data", b"csrf_token=abc"),
        ("application/x-www-form-urlencoded", b"a=1&" * 1001 + b"csrf_token=abc"),
    ],
)
async def test_unparsable_forms_have_no_token(
    browser: Browser, content_type: str, body: bytes
) -> None:
    """A malformed multipart body or a flood of fields is refused as token-less, not a 500."""
    await browser.token()
    response = await browser.post(content=body, headers={"content-type": content_type})
    assert response.status_code == 403
    assert response.json()["reason"] == csrf.REASON_NO_TOKEN


async def test_wrong_form_token_is_refused(browser: Browser) -> None:
    """A form carrying a token of the wrong session is refused as incorrect."""
    await browser.token()
    other = csrf_token(stored_session(), KEYRING)
    response = await browser.post(data={"csrf_token": other})
    assert response.json()["reason"] == csrf.REASON_BAD_TOKEN


async def test_form_body_over_the_limit_is_413(make_browser: Callable[..., Browser]) -> None:
    """A form too large to buffer is refused with 413, declared or streamed in chunks."""
    browser = make_browser(max_form_body=1024)
    token = await browser.token()
    declared = await browser.post(data={"note": "n" * 2000, "csrf_token": token})
    assert declared.status_code == 413

    async def chunks() -> AsyncIterator[bytes]:
        for _ in range(4):
            yield b"note=" + b"n" * 500 + b"&"

    streamed = await browser.post(
        content=chunks(), headers={"content-type": "application/x-www-form-urlencoded"}
    )
    assert streamed.status_code == 413
    small = await browser.post(data={"csrf_token": token})
    assert small.status_code == 200


async def test_client_leaving_while_the_form_buffers_stops_quietly() -> None:
    """A disconnect before the body ends runs neither the application nor a response."""
    called: list[str] = []
    sent: list[dict[str, Any]] = []

    async def app(scope: dict[str, Any], receive: Any, send: Any) -> None:
        called.append("app")

    session = stored_session()
    csrf_token(session, KEYRING)
    middleware = CSRFMiddleware(app, keyring=KEYRING)
    scope = {
        "type": "http",
        "method": "POST",
        "path": "/",
        "scheme": "https",
        "headers": [
            (b"host", b"testserver"),
            (b"origin", SITE.encode()),
            (b"content-type", b"application/x-www-form-urlencoded"),
        ],
        "session": session,
    }

    async def receive() -> dict[str, Any]:
        return {"type": "http.disconnect"}

    async def send(message: dict[str, Any]) -> None:
        sent.append(message)

    await middleware(scope, receive, send)
    assert called == []
    assert sent == []


async def test_require_json_refuses_simple_content_types(
    make_browser: Callable[..., Browser],
) -> None:
    """On JSON-only paths a form or text/plain body gets 415; JSON and bodyless DELETE pass."""
    browser = make_browser(require_json=lambda scope: scope["path"].startswith("/api/"))
    token = await browser.token()
    for kwargs in (
        {"data": {"csrf_token": token}},
        {"content": b"{}", "headers": {"content-type": "text/plain", "csrf-token": token}},
        {"content": b"{}", "headers": {"csrf-token": token}},
    ):
        response = await browser.post("/api/echo", **kwargs)
        assert response.status_code == 415
    ok = await browser.post("/api/echo", json={"amount": 1}, headers={"csrf-token": token})
    assert ok.status_code == 200
    bodyless = await browser.request("DELETE", "/api/echo", headers={"csrf-token": token})
    assert bodyless.status_code == 200
    form_elsewhere = await browser.post("/echo", data={"csrf_token": token})
    assert form_elsewhere.status_code == 200


async def test_login_without_session_needs_no_token_but_the_origin(browser: Browser) -> None:
    """The login form (no session yet) passes on its origin alone and gets a session."""
    response = await browser.post("/login")
    assert response.status_code == 200
    assert browser.cookie is not None


async def test_fetch_metadata_rules(make_browser: Callable[..., Browser]) -> None:
    """same-origin/none vouch without Origin; same-site needs a trusted Origin."""
    browser = make_browser()
    browser.origin = None
    for site in ("same-origin", "none"):
        browser.cookie = None
        response = await browser.post("/login", headers={"sec-fetch-site": site})
        assert response.status_code == 200, site
    browser.cookie = None
    sibling = await browser.post(
        "/login", headers={"sec-fetch-site": "same-site", "origin": "https://other.testserver"}
    )
    assert sibling.json()["reason"] == csrf.REASON_BAD_ORIGIN
    bare = await browser.post("/login", headers={"sec-fetch-site": "same-site"})
    assert bare.json()["reason"] == csrf.REASON_NO_REFERER
    own = await browser.post("/login", headers={"sec-fetch-site": "same-site", "origin": SITE})
    assert own.json()["reason"] == csrf.REASON_BAD_ORIGIN
    trusted = await browser.post(
        "/login", headers={"sec-fetch-site": "same-site", "origin": TRUSTED}
    )
    assert trusted.status_code == 200


async def test_referer_is_the_fallback_for_a_missing_origin(browser: Browser) -> None:
    """Without Origin, a Referer from this site or a trusted origin passes."""
    browser.origin = None
    for referer in (f"{SITE}/login?next=/", f"{TRUSTED}/app"):
        browser.cookie = None
        response = await browser.post("/login", headers={"referer": referer})
        assert response.status_code == 200, referer


async def test_plain_http_allows_missing_origin_and_referer(
    make_browser: Callable[..., Browser],
) -> None:
    """Over HTTP a request without Origin or Referer passes; a foreign Referer does not."""
    browser = make_browser(base_url="http://testserver")
    browser.origin = None
    assert (await browser.post("/login")).status_code == 200
    browser.cookie = None
    bad = await browser.post("/login", headers={"referer": "http://evil.example/"})
    assert bad.json()["reason"] == csrf.REASON_BAD_REFERER


async def test_exempt_path_skips_both_layers(make_browser: Callable[..., Browser]) -> None:
    """An exempt path takes a cross-site, token-less request; other paths still refuse it."""
    browser = make_browser(exempt_paths={"/hooks/in"})
    await browser.token()
    browser.origin = "https://idp.example"
    headers = {"sec-fetch-site": "cross-site"}
    assert (await browser.post("/hooks/in", headers=headers)).status_code == 200
    assert (await browser.post("/echo", headers=headers)).status_code == 403
    browser.origin = SITE
    assert (await browser.post("/hooks/in")).status_code == 200
    assert (await browser.post("/echo")).json()["reason"] == csrf.REASON_NO_TOKEN


async def test_exempt_predicate_exempts_matching_requests(
    make_browser: Callable[..., Browser],
) -> None:
    """The exempt predicate works like exempt_paths for the requests it selects."""
    browser = make_browser(exempt=lambda scope: scope["path"].startswith("/hooks/"))
    await browser.token()
    assert (await browser.post("/hooks/in")).status_code == 200
    assert (await browser.post("/echo")).status_code == 403


async def test_on_reject_renders_the_rejection(make_browser: Callable[..., Browser]) -> None:
    """A custom on_reject decides status, headers and body from the reason."""

    def html(scope: dict[str, Any], reason: str) -> Response:
        return HTMLResponse(f"<p>{reason}</p>", 403, headers={"X-Reason": reason})

    browser = make_browser(on_reject=html)
    response = await browser.post(headers={"origin": "https://evil.example"})
    assert response.status_code == 403
    assert response.headers["content-type"] == "text/html; charset=utf-8"
    assert response.headers["x-reason"] == csrf.REASON_BAD_ORIGIN
    assert response.text == f"<p>{csrf.REASON_BAD_ORIGIN}</p>"


async def test_token_endpoint_response_is_private(browser: Browser) -> None:
    """Handing out a token sets the pre-session cookie (not a session) and marks it no-store."""
    response = await browser.request("GET", "/csrf-token")
    assert response.headers["cache-control"] == "no-store"
    assert "Cookie" in response.headers["vary"]
    assert browser.cookie is None
    assert set(browser.cookies) == {"__Host-csrf"}
    assert json.loads(response.text)["csrfToken"]
    again = await browser.request("GET", "/csrf-token")  # the cookie is reused, not re-minted
    assert "set-cookie" not in again.headers
    assert again.headers["cache-control"] == "no-store"
