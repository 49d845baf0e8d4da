"""Attacks on the CSRF and CORS layers: forged origins, stolen or misplaced tokens, login CSRF."""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable

import pytest

from sessionauth import csrf
from sessionauth.cors import TrustedCORSMiddleware
from sessionauth.csrf import CSRFMiddleware
from sessionauth.errors import ConfigurationError
from sessionauth.tokens import Keyring
from tests.unit.test_csrf import KEYRING, SITE, TRUSTED, Browser, browsers

LOOKALIKE_ORIGINS = [
    "https://testserver.evil.com",
    "https://app.testserver.evil.com",
    "https://evil-app.testserver",
    "https://xapp.testserver",
    "https://app.testserve",
    "https://app.testserver.",
    "http://app.testserver",
    "https://app.testserver:8443",
    "https://app.testserver@evil.com",
    "https://app.testserver/",
    "https://evil.com/https://app.testserver",
    "https://app.testserver%2eevil.com",
    "null",
    "",
]


@pytest.fixture
async def make_browser() -> AsyncIterator[Callable[..., Browser]]:
    async with browsers() as factory:
        yield factory


@pytest.fixture
async def victim(make_browser: Callable[..., Browser]) -> tuple[Browser, str]:
    """A browser with a logged-in session, and a valid token for it."""
    browser = make_browser(cors=True)
    assert (await browser.post("/login")).status_code == 200
    token = await browser.token()
    assert browser.cookie is not None
    return browser, token


@pytest.mark.parametrize("origin", [SITE, "https://evil.example", None])
async def test_cross_site_fetch_metadata_is_refused_even_with_a_valid_token(
    victim: tuple[Browser, str], origin: str | None
) -> None:
    """Sec-Fetch-Site: cross-site is refused, whatever the token, unless the origin is trusted."""
    browser, token = victim
    browser.origin = origin
    response = await browser.post(headers={"sec-fetch-site": "cross-site", "csrf-token": token})
    assert response.status_code == 403
    assert response.json()["reason"] == csrf.REASON_CROSS_SITE


@pytest.mark.parametrize("site", ["cross-site", "same-site", "same-origin", "none", None])
async def test_a_trusted_origin_passes_whatever_fetch_metadata_says(
    victim: tuple[Browser, str], site: str | None
) -> None:
    """A trusted origin whose preflight succeeds also gets its real request through."""
    browser, token = victim
    preflight = await browser.request(
        "OPTIONS",
        "/echo",
        headers={
            "origin": TRUSTED,
            "access-control-request-method": "POST",
            "access-control-request-headers": "csrf-token",
        },
    )
    assert preflight.status_code == 200
    assert preflight.headers["access-control-allow-origin"] == TRUSTED
    headers = {"origin": TRUSTED, "csrf-token": token}
    if site is not None:
        headers["sec-fetch-site"] = site
    response = await browser.post(headers=headers)
    assert response.status_code == 200
    assert response.headers["access-control-allow-origin"] == TRUSTED
    missing = await browser.post(headers={**headers, "csrf-token": "x" * 86})
    assert missing.status_code == 403  # trusted origins still need the session's token
    assert missing.json()["reason"] == csrf.REASON_BAD_TOKEN


@pytest.mark.parametrize("origin", LOOKALIKE_ORIGINS)
async def test_lookalike_origins_fail_csrf_even_with_a_valid_token(
    victim: tuple[Browser, str], origin: str
) -> None:
    """Suffix, prefix, scheme, port, user-info, path and null tricks never match an origin."""
    browser, token = victim
    response = await browser.post(headers={"origin": origin, "csrf-token": token})
    assert response.status_code == 403
    assert response.json()["reason"] == csrf.REASON_BAD_ORIGIN


@pytest.mark.parametrize("origin", [o for o in LOOKALIKE_ORIGINS if o])
async def test_lookalike_origins_get_no_cors_headers(
    make_browser: Callable[..., Browser], origin: str
) -> None:
    """Neither a simple request nor a preflight from a lookalike gets any CORS grant."""
    browser = make_browser(cors=True)
    simple = await browser.request("GET", "/csrf-token", headers={"origin": origin})
    preflight = await browser.request(
        "OPTIONS",
        "/echo",
        headers={"origin": origin, "access-control-request-method": "POST"},
    )
    for response in (simple, preflight):
        granted = [h for h in response.headers if h.lower().startswith("access-control-")]
        assert granted == []
    assert "Origin" in simple.headers["vary"]


async def test_exact_trusted_origin_gets_credentialed_cors(
    make_browser: Callable[..., Browser],
) -> None:
    """The trusted origin is echoed with credentials and Vary: Origin, preflights included."""
    browser = make_browser(cors=True)
    simple = await browser.request("GET", "/csrf-token", headers={"origin": TRUSTED})
    assert simple.headers["access-control-allow-origin"] == TRUSTED
    assert simple.headers["access-control-allow-credentials"] == "true"
    assert "Origin" in simple.headers["vary"]
    assert "Cookie" in simple.headers["vary"]
    preflight = await browser.request(
        "OPTIONS",
        "/echo",
        headers={
            "origin": TRUSTED,
            "access-control-request-method": "DELETE",
            "access-control-request-headers": "content-type, x-csrf-token",
        },
    )
    assert preflight.status_code == 200
    assert preflight.headers["access-control-allow-origin"] == TRUSTED
    assert preflight.headers["access-control-allow-credentials"] == "true"
    assert "DELETE" in preflight.headers["access-control-allow-methods"]
    assert "X-CSRF-Token" in preflight.headers["access-control-allow-headers"]


async def test_trusted_origin_passes_csrf_with_its_token(victim: tuple[Browser, str]) -> None:
    """A same-site trusted origin with the session's token is accepted."""
    browser, token = victim
    response = await browser.post(
        headers={"origin": TRUSTED, "sec-fetch-site": "same-site", "csrf-token": token}
    )
    assert response.status_code == 200


@pytest.mark.parametrize(
    "origins", [(SITE, "https://evil.example"), ("https://evil.example", SITE)]
)
async def test_duplicated_origin_headers_are_refused(
    victim: tuple[Browser, str], origins: tuple[str, str]
) -> None:
    """Two Origin headers are refused in either order, never resolved by position."""
    browser, token = victim
    browser.origin = None
    response = await browser.post(
        headers=[("origin", origins[0]), ("origin", origins[1]), ("csrf-token", token)]
    )
    assert response.status_code == 403
    assert response.json()["reason"] == csrf.REASON_BAD_ORIGIN


@pytest.mark.parametrize(
    "referer",
    [
        "https://testserver.evil.com/",
        "https://evil.com/https://testserver/",
        "https://testserver@evil.com/",
        "http://testserver/",
        "https://testserver:444/",
        "not a url",
    ],
)
async def test_lookalike_referers_are_refused(victim: tuple[Browser, str], referer: str) -> None:
    """Without Origin, a Referer from anywhere but this site or a trusted origin fails."""
    browser, token = victim
    browser.origin = None
    response = await browser.post(headers={"referer": referer, "csrf-token": token})
    assert response.status_code == 403
    assert response.json()["reason"] == csrf.REASON_BAD_REFERER


async def test_suppressed_origin_and_referer_over_https_is_refused(
    victim: tuple[Browser, str],
) -> None:
    """A request stripped of Origin and Referer (Referrer-Policy tricks) fails over HTTPS."""
    browser, token = victim
    browser.origin = None
    response = await browser.post(headers={"csrf-token": token})
    assert response.json()["reason"] == csrf.REASON_NO_REFERER


async def test_sibling_subdomain_is_refused_even_with_a_valid_token(
    victim: tuple[Browser, str],
) -> None:
    """A same-site request from an untrusted subdomain fails despite a stolen valid token."""
    browser, token = victim
    response = await browser.post(
        headers={
            "origin": "https://blog.testserver",
            "sec-fetch-site": "same-site",
            "csrf-token": token,
        }
    )
    assert response.json()["reason"] == csrf.REASON_BAD_ORIGIN


@pytest.mark.parametrize("origin", ["*", "https://*.testserver", "https://app.testserver/"])
def test_unsafe_trusted_origins_refuse_to_start(origin: str) -> None:
    """A wildcard or malformed trusted origin is refused by both CSRF and CORS at start-up."""

    async def app(scope: object, receive: object, send: object) -> None:
        raise AssertionError("never called")

    with pytest.raises(ConfigurationError):
        CSRFMiddleware(app, keyring=KEYRING, trusted_origins=[origin])
    with pytest.raises(ConfigurationError):
        TrustedCORSMiddleware(app, trusted_origins=[origin])


@pytest.mark.parametrize("origin", ["https://evil.example", "null", "http://testserver"])
async def test_login_csrf_from_a_foreign_origin_is_refused(
    make_browser: Callable[..., Browser], origin: str
) -> None:
    """A foreign page cannot log the victim into the attacker's account: 403, no cookie."""
    browser = make_browser()
    response = await browser.post("/login", headers={"origin": origin})
    assert response.status_code == 403
    assert "set-cookie" not in response.headers
    assert browser.cookie is None


async def test_login_from_the_same_origin_is_allowed(make_browser: Callable[..., Browser]) -> None:
    """The site's own login form passes with no session and no token."""
    browser = make_browser()
    response = await browser.post("/login", headers={"origin": SITE})
    assert response.status_code == 200
    assert browser.cookie is not None


async def test_token_in_the_query_string_is_ignored(victim: tuple[Browser, str]) -> None:
    """?csrf_token=<valid> does not count: query strings leak into logs and Referers."""
    browser, token = victim
    response = await browser.post(f"/echo?csrf_token={token}")
    assert response.status_code == 403
    assert response.json()["reason"] == csrf.REASON_NO_TOKEN


@pytest.mark.parametrize("name", ["csrf_token", "csrftoken", "CSRF-Token", "X-CSRF-Token"])
async def test_token_in_a_cookie_is_ignored(victim: tuple[Browser, str], name: str) -> None:
    """A token in a cookie does not count: the browser attaches cookies to forged requests."""
    browser, token = victim
    assert browser.cookie is not None
    cookie = f"__Host-session={browser.cookie}; {name}={token}"
    response = await browser.post(headers={"cookie": cookie})
    assert response.status_code == 403
    assert response.json()["reason"] == csrf.REASON_NO_TOKEN


async def test_token_of_another_session_is_refused(
    victim: tuple[Browser, str], make_browser: Callable[..., Browser]
) -> None:
    """The attacker's own valid token does not work with the victim's session."""
    browser, _ = victim
    attacker = make_browser()
    attacker.client = browser.client  # same server, the attacker's own session
    attacker_token = await attacker.token()
    response = await browser.post(headers={"csrf-token": attacker_token})
    assert response.json()["reason"] == csrf.REASON_BAD_TOKEN
    assert (await attacker.post(headers={"csrf-token": attacker_token})).status_code == 200


async def test_pre_login_token_is_refused_after_login(make_browser: Callable[..., Browser]) -> None:
    """Login regenerates the session, so a token observed before it is worthless after it."""
    browser = make_browser()
    before = await browser.token()
    assert (await browser.post(headers={"csrf-token": before})).status_code == 200
    assert (await browser.post("/login", headers={"csrf-token": before})).status_code == 200
    stale = await browser.post(headers={"csrf-token": before})
    assert stale.json()["reason"] == csrf.REASON_BAD_TOKEN
    fresh = await browser.token()
    assert (await browser.post(headers={"csrf-token": fresh})).status_code == 200


async def test_text_plain_to_a_json_endpoint_is_refused(
    make_browser: Callable[..., Browser],
) -> None:
    """The no-preflight text/plain trick against a JSON endpoint gets 415."""
    browser = make_browser(require_json=lambda scope: scope["path"].startswith("/api/"))
    token = await browser.token()
    response = await browser.post(
        "/api/echo",
        content=b'{"amount": 1000000}',
        headers={"content-type": "text/plain", "csrf-token": token},
    )
    assert response.status_code == 415


def test_keyring_subkeys_separate_csrf_from_cookies() -> None:
    """The CSRF subkey differs from the cookie subkey under the same secret."""
    keyring = Keyring(["s" * 40])
    assert keyring.subkeys("csrf") != keyring.subkeys("cookie")
