"""The HTML pages and their form posts, driven in process over a real SQLite database."""

from __future__ import annotations

import re
from collections.abc import AsyncIterator
from pathlib import Path
from urllib.parse import parse_qs, urlsplit

import httpx
import pytest
from fastapi import FastAPI
from starlette.requests import Request

from sessionauth.server.templating import device_name, render_error, time_ago
from sessionauth.stores.users import User
from tests.support.apps import running_app

PASSWORD = "correct horse battery"
ORIGIN = "http://testserver"
HTML = {"Accept": "text/html,application/xhtml+xml", "Origin": ORIGIN}


@pytest.fixture
async def app(tmp_path: Path) -> AsyncIterator[FastAPI]:
    async with running_app(tmp_path) as application:
        yield application


@pytest.fixture
async def client(app: FastAPI) -> AsyncIterator[httpx.AsyncClient]:
    async with _client(app) as browser:
        yield browser


def _client(
    app: FastAPI, user_agent: str = "Mozilla/5.0 (X11; Linux x86_64) Firefox/130.0"
) -> httpx.AsyncClient:
    return httpx.AsyncClient(
        transport=httpx.ASGITransport(app=app),
        base_url=ORIGIN,
        headers={**HTML, "User-Agent": user_agent},
    )


async def add_user(app: FastAPI, email: str, role: str = "user") -> User:
    auth = app.state.authenticator
    user: User = await auth.users.create(email, await auth.hasher.hash(PASSWORD), role=role)
    return user


def csrf_fields(html: str) -> list[str]:
    return re.findall(r'<input type="hidden" name="csrf_token" value="([^"]*)">', html)


def form_count(html: str) -> int:
    return len(re.findall(r'<form method="post"', html))


async def sign_in(client: httpx.AsyncClient, email: str, next_page: str = "/") -> httpx.Response:
    page = await client.get("/login")
    (token,) = csrf_fields(page.text)
    return await client.post(
        "/ui/login",
        data={"email": email, "password": PASSWORD, "next": next_page, "csrf_token": token},
    )


async def token_of(client: httpx.AsyncClient, path: str = "/account") -> str:
    page = await client.get(path)
    assert page.status_code == 200
    return csrf_fields(page.text)[0]


def flashes(html: str) -> list[str]:
    return re.findall(r'<p class="flash flash-\w+" role="\w+">([^<]*)</p>', html)


# -- rendering ------------------------------------------------------------------------------


async def test_login_page_has_labelled_fields_with_autocomplete_and_stores_nothing(
    client: httpx.AsyncClient,
) -> None:
    """GET /login: email and password with the right autocomplete, a CSRF field, no cookie."""
    response = await client.get("/login")
    assert response.status_code == 200
    html = response.text
    assert '<form method="post" action="/ui/login"' in html
    assert re.search(
        r'<label for="email">.*<input id="email" name="email" type="email"', html, re.S
    )
    assert 'autocomplete="username"' in html
    assert 'type="password" autocomplete="current-password"' in html
    assert len(csrf_fields(html)) == form_count(html) == 1
    assert "set-cookie" not in response.headers  # crawlers of /login store no session
    assert "frame-ancestors 'none'" in response.headers["content-security-policy"]
    assert "form-action 'self'" in response.headers["content-security-policy"]


async def test_every_form_of_every_page_carries_a_csrf_token(
    app: FastAPI, client: httpx.AsyncClient
) -> None:
    """Dashboard, account and admin pages: one CSRF field per form, masked anew per response."""
    await add_user(app, "root@example.com", role="admin")
    await add_user(app, "bob@example.com")
    await sign_in(client, "root@example.com")
    for path in ("/", "/account", "/admin/users", "/login"):
        html = (await client.get(path)).text
        tokens = csrf_fields(html)
        assert form_count(html) >= 1, path
        assert len(tokens) == form_count(html), path
        assert all(len(token) == 86 for token in tokens), path
        again = csrf_fields((await client.get(path)).text)
        assert tokens[0] != again[0], f"{path}: tokens are masked per response"


async def test_account_page_uses_current_and_new_password_autocomplete(
    app: FastAPI, client: httpx.AsyncClient
) -> None:
    """The password form lets password managers tell the current password from the new one."""
    await add_user(app, "alice@example.com")
    await sign_in(client, "alice@example.com")
    html = (await client.get("/account")).text
    assert 'name="current_password" type="password" autocomplete="current-password"' in html
    assert 'name="new_password" type="password" autocomplete="new-password"' in html
    assert 'name="confirm_password" type="password" autocomplete="new-password"' in html
    assert "This device" in html
    assert "Firefox on Linux" in html


async def test_dashboard_shows_who_i_am(app: FastAPI, client: httpx.AsyncClient) -> None:
    """The dashboard names the user and role; the admin link shows for admins only."""
    await add_user(app, "alice@example.com")
    await sign_in(client, "alice@example.com")
    html = (await client.get("/")).text
    assert "alice@example.com" in html
    assert 'badge-neutral">user<' in html
    assert 'href="/admin/users"' not in html


async def test_user_controlled_text_is_escaped(app: FastAPI) -> None:
    """A user agent full of markup is shown as text on the sessions table."""
    await add_user(app, "alice@example.com")
    async with _client(app, user_agent="<script>alert(1)</script>") as browser:
        await sign_in(browser, "alice@example.com")
        html = (await browser.get("/account")).text
    assert "<script>alert(1)</script>" not in html
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in html


# -- redirects ------------------------------------------------------------------------------


@pytest.mark.parametrize("path", ["/", "/account", "/admin/users", "/account?tab=x"])
async def test_anonymous_visitors_are_sent_to_login_with_next(
    client: httpx.AsyncClient, path: str
) -> None:
    """A page that needs a login answers 303 to /login?next=<the page>."""
    response = await client.get(path)
    assert response.status_code == 303
    location = urlsplit(response.headers["location"])
    assert location.path == "/login"
    assert parse_qs(location.query) == {"next": [path]}  # no "your session has ended"


async def test_login_form_goes_to_next_after_signing_in(
    app: FastAPI, client: httpx.AsyncClient
) -> None:
    """A successful form login answers 303 to the same-site ``next`` page, with a new cookie."""
    await add_user(app, "alice@example.com")
    response = await sign_in(client, "alice@example.com", next_page="/account")
    assert response.status_code == 303
    assert response.headers["location"] == "/account"
    assert response.headers["set-cookie"].startswith("session=")
    assert (await client.get("/account")).status_code == 200


OPEN_REDIRECTS = [
    "//evil.com",
    "/\\evil.com",
    "https://evil.com",
    "javascript:alert(1)",
    "http:/evil.com",
    "/\t/evil.com",
    "",
]


@pytest.mark.parametrize("target", OPEN_REDIRECTS)
async def test_login_never_redirects_off_site(
    app: FastAPI, client: httpx.AsyncClient, target: str
) -> None:
    """An absolute, scheme-relative or scripted ``next`` falls back to ``/``."""
    await add_user(app, "alice@example.com")
    response = await sign_in(client, "alice@example.com", next_page=target)
    assert response.status_code == 303
    assert response.headers["location"] == "/"


@pytest.mark.parametrize("target", OPEN_REDIRECTS)
async def test_login_page_drops_an_unsafe_next(client: httpx.AsyncClient, target: str) -> None:
    """The login form carries only a safe ``next`` (else ``/``) to the post."""
    response = await client.get("/login", params={"next": target})
    assert '<input type="hidden" name="next" value="/">' in response.text


async def test_failed_login_shows_a_fixed_message_and_keeps_next(
    app: FastAPI, client: httpx.AsyncClient
) -> None:
    """A wrong password: 303 back to the form, which says so; no session is stored."""
    await add_user(app, "alice@example.com")
    response = await client.post(
        "/ui/login", data={"email": "alice@example.com", "password": "wrong!", "next": "/account"}
    )
    assert response.status_code == 303
    location = "/login?error=invalid&email=alice@example.com&next=/account"
    assert response.headers["location"] == location
    assert "set-cookie" not in response.headers
    page = await client.get(response.headers["location"])
    assert "Invalid email or password." in page.text
    assert '<input type="hidden" name="next" value="/account">' in page.text
    assert 'value="alice@example.com"' in page.text  # only the password is typed again
    forged = await client.get("/login", params={"email": '"><script>x</script>@a'})
    assert "<script>x" not in forged.text
    reflected = await client.get("/login", params={"error": "<b>you were hacked</b>"})
    assert "hacked" not in reflected.text


async def test_throttled_login_says_so(app: FastAPI, client: httpx.AsyncClient) -> None:
    """After too many failures the form explains the wait instead of "invalid"."""
    await add_user(app, "alice@example.com")
    wrong = {"email": "alice@example.com", "password": "wrong password"}
    locations = [(await client.post("/ui/login", data=wrong)).headers["location"] for _ in range(6)]
    assert locations[0] == "/login?error=invalid&email=alice@example.com"
    assert locations[-1].startswith("/login?error=throttled&wait=")
    wait = int(locations[-1].split("wait=")[1].split("&")[0])
    assert 840 < wait <= 900  # the account's 15-minute lock, from its first failure
    page = (await client.get(locations[-1])).text
    assert "Too many failed attempts. Try again in 15 minutes." in page
    for wait_param, said in [
        ("42", "in 42 seconds."),
        ("60", "in 1 minute."),
        ("61", "in 2 minutes."),
    ]:
        shown = (await client.get(f"/login?error=throttled&wait={wait_param}")).text
        assert f"Too many failed attempts. Try again {said}" in shown
    odd = (await client.get("/login?error=throttled&wait=<b>9</b>")).text
    assert "Too many failed attempts. Wait a few minutes, then try again." in odd


# -- errors ---------------------------------------------------------------------------------


async def test_non_admin_gets_a_friendly_403_page(app: FastAPI, client: httpx.AsyncClient) -> None:
    """A user on /admin/users gets the HTML 403 page, and admin posts are refused the same."""
    await add_user(app, "alice@example.com")
    other = await add_user(app, "bob@example.com")
    await sign_in(client, "alice@example.com")
    response = await client.get("/admin/users")
    assert response.status_code == 403
    assert response.headers["content-type"].startswith("text/html")
    assert "Access denied" in response.text
    token = await token_of(client)
    post = await client.post(f"/ui/admin/users/{other.id}/delete", data={"csrf_token": token})
    assert post.status_code == 403
    assert await app.state.authenticator.users.get(other.id) is not None


async def test_unknown_page_gets_a_friendly_404(client: httpx.AsyncClient) -> None:
    """A browser asking for a missing page sees the 404 page, not JSON."""
    response = await client.get("/no/such/page")
    assert response.status_code == 404
    assert response.headers["content-type"].startswith("text/html")
    assert "Page not found" in response.text
    assert "There is nothing at this address." in response.text  # not a bare "Not found"


@pytest.mark.parametrize(
    ("status", "title"),
    [
        (401, "Sign-in required"),
        (403, "Access denied"),
        (404, "Page not found"),
        (429, "Too many requests"),
        (503, "Service unavailable"),
    ],
)
def test_render_error_names_the_problem(status: int, title: str) -> None:
    """``render_error``: the status, its title and the escaped message, with extra headers."""
    request = Request({"type": "http", "method": "GET", "path": "/", "headers": []})
    response = render_error(request, status, "Try <later>", headers={"Retry-After": "5"})
    body = bytes(response.body).decode()
    assert response.status_code == status
    assert f'<h1 id="error-title">{title}</h1>' in body
    assert "Try &lt;later&gt;" in body
    assert response.headers["retry-after"] == "5"


async def test_form_without_csrf_token_is_refused_with_a_page(
    app: FastAPI, client: httpx.AsyncClient
) -> None:
    """A signed-in browser's form post without its token gets the 403 page; nothing changes."""
    await add_user(app, "alice@example.com")
    await sign_in(client, "alice@example.com")
    response = await client.post("/ui/logout", data={})
    assert response.status_code == 403
    assert "came from another site" in response.text
    assert (await client.get("/")).status_code == 200


async def test_form_from_another_origin_is_refused(app: FastAPI, client: httpx.AsyncClient) -> None:
    """Even with a valid token, a post whose Origin is another port is refused."""
    await add_user(app, "alice@example.com")
    await sign_in(client, "alice@example.com")
    token = await token_of(client)
    response = await client.post(
        "/ui/logout", data={"csrf_token": token}, headers={"Origin": "http://testserver:8081"}
    )
    assert response.status_code == 403
    assert (await client.get("/")).status_code == 200


# -- forms ----------------------------------------------------------------------------------


async def test_password_change_flashes_once_and_signs_out_other_sessions(
    app: FastAPI, client: httpx.AsyncClient
) -> None:
    """Mismatch and wrong current password are flashed; success revokes the other session."""
    await add_user(app, "alice@example.com")
    await sign_in(client, "alice@example.com")
    async with _client(app) as other:
        await sign_in(other, "alice@example.com")

        async def post(current: str, new: str, confirm: str) -> list[str]:
            fields = {"current_password": current, "new_password": new, "confirm_password": confirm}
            response = await client.post(
                "/ui/password", data={**fields, "csrf_token": await token_of(client)}
            )
            assert response.status_code == 303
            assert response.headers["location"] == "/account"
            return flashes((await client.get("/account")).text)

        assert await post(PASSWORD, "new password 1", "new password 2") == [
            "The new passwords do not match."
        ]
        assert await post("wrong", "new password 1", "new password 1") == [
            "Your current password is not correct."
        ]
        assert await post(PASSWORD, "short", "short") == [
            "The new password was refused: password shorter than 8 characters."
        ]
        assert await post(PASSWORD, "new password 1", "new password 1") == [
            "Password changed. 1 other session signed out."
        ]
        assert flashes((await client.get("/account")).text) == []  # shown once
        assert (await other.get("/account")).status_code == 303


async def test_revoking_one_of_my_sessions(app: FastAPI, client: httpx.AsyncClient) -> None:
    """The Revoke button ends that session only; a made-up handle is a flashed error."""
    user = await add_user(app, "alice@example.com")
    await sign_in(client, "alice@example.com")
    async with _client(app) as other:
        await sign_in(other, "alice@example.com")
        auth = app.state.authenticator
        phone = await current_handle(other)
        listing = await auth.list_sessions(user.id)
        (victim,) = [s for s in listing.sessions if s.handle == phone]
        token = await token_of(client)
        response = await client.post(
            f"/ui/sessions/{victim.handle}/revoke", data={"csrf_token": token}
        )
        assert response.headers["location"] == "/account"
        assert flashes((await client.get("/account")).text) == [
            "Session revoked: that device is signed out."
        ]
        assert (await other.get("/")).status_code == 303
        token = await token_of(client)
        await client.post(f"/ui/sessions/{victim.handle}/revoke", data={"csrf_token": token})
        assert flashes((await client.get("/account")).text) == ["That session had already ended."]
        assert (await client.get("/")).status_code == 200


async def test_a_page_load_after_the_session_ended_says_so(
    app: FastAPI, client: httpx.AsyncClient
) -> None:
    """A revoked session's next page load goes to sign in with "Your session has ended"."""
    user = await add_user(app, "alice@example.com")
    await sign_in(client, "alice@example.com", next_page="/account")
    await app.state.authenticator.revoke_all_sessions(user.id)
    response = await client.get("/account")
    assert response.status_code == 303
    assert response.headers["location"] == "/login?notice=expired&next=/account"
    page = await client.get(response.headers["location"])
    assert "Your session has ended. Please sign in again." in page.text
    # That answer cleared the dead cookie: from now on it is a plain visitor, told nothing.
    assert (await client.get("/account")).headers["location"] == "/login?next=/account"


async def current_handle(client: httpx.AsyncClient) -> str:
    """The handle of the session ``client`` holds (the current one listed by GET /sessions)."""
    response = await client.get("/sessions", headers={"Accept": "application/json"})
    (handle,) = [s["handle"] for s in response.json()["sessions"] if s["current"]]
    return str(handle)


async def test_sign_out_other_sessions_and_logout(app: FastAPI, client: httpx.AsyncClient) -> None:
    """Signing out other sessions keeps this one; signing out clears the cookie."""
    await add_user(app, "alice@example.com")
    await sign_in(client, "alice@example.com")
    async with _client(app) as other:
        await sign_in(other, "alice@example.com")
        await client.post("/ui/sessions/revoke-others", data={"csrf_token": await token_of(client)})
        assert flashes((await client.get("/account")).text) == ["Signed out 1 other session."]
        assert (await other.get("/")).status_code == 303
    response = await client.post("/ui/logout", data={"csrf_token": await token_of(client)})
    assert response.status_code == 303
    assert response.headers["location"] == "/login?notice=signed-out"
    assert "Max-Age=0" in response.headers["set-cookie"]
    assert "You have been signed out." in (await client.get("/login?notice=signed-out")).text
    assert (await client.get("/")).status_code == 303


async def test_admin_manages_users(app: FastAPI, client: httpx.AsyncClient) -> None:
    """Create, change role, disable, enable, revoke sessions and delete, each flashed."""
    await add_user(app, "root@example.com", role="admin")
    await sign_in(client, "root@example.com")
    auth = app.state.authenticator

    async def post(path: str, **fields: str) -> list[str]:
        token = await token_of(client, "/admin/users")
        response = await client.post(path, data={**fields, "csrf_token": token})
        assert response.status_code == 303
        assert response.headers["location"] == "/admin/users"
        return flashes((await client.get("/admin/users")).text)

    assert await post(
        "/ui/admin/users", email="Bob@Example.com", password=PASSWORD, role="user"
    ) == ["Created bob@example.com (user)."]
    bob = await auth.users.get_by_email("bob@example.com")
    assert await post(
        "/ui/admin/users", email="bob@example.com", password=PASSWORD, role="user"
    ) == ["A user with that email already exists."]
    assert await post("/ui/admin/users", email="x@example.com", password=PASSWORD, role="god") == [
        "Unknown role &#39;god&#39;: use one of admin, user."
    ]
    async with _client(app) as bobs:
        await sign_in(bobs, "bob@example.com")
        assert await post(f"/ui/admin/users/{bob.id}/role", role="admin") == [
            "bob@example.com is now admin."
        ]
        assert (await bobs.get("/admin/users")).status_code == 200  # applies at once
        html = (await client.get("/admin/users")).text
        assert re.search(rf'id="user-{bob.id}">.*?<td class="num">1</td>', html, re.S)
        assert await post(f"/ui/admin/users/{bob.id}/revoke-sessions") == [
            "Signed bob@example.com out of 1 session(s)."
        ]
        assert (await bobs.get("/")).status_code == 303
        await sign_in(bobs, "bob@example.com")
        assert await post(f"/ui/admin/users/{bob.id}/disable", disabled="true") == [
            "bob@example.com is disabled and signed out everywhere."
        ]
        assert (await bobs.get("/")).status_code == 303
        assert (
            (await sign_in(bobs, "bob@example.com"))
            .headers["location"]
            .startswith("/login?error=invalid")
        )
        assert await post(f"/ui/admin/users/{bob.id}/disable", disabled="false") == [
            "bob@example.com is enabled."
        ]
    assert await post(f"/ui/admin/users/{bob.id}/delete") == ["Deleted bob@example.com."]
    assert await auth.users.get(bob.id) is None
    assert await post(f"/ui/admin/users/{bob.id}/delete") == ["That user no longer exists."]
    token = await token_of(client, "/admin/users")
    malformed = await client.post("/ui/admin/users/abc/delete", data={"csrf_token": token})
    assert malformed.status_code == 404


async def test_admin_cannot_lock_themselves_out(app: FastAPI, client: httpx.AsyncClient) -> None:
    """Demoting, disabling or deleting yourself from the page is refused, by the API's rule."""
    admin = await add_user(app, "root@example.com", role="admin")
    await sign_in(client, "root@example.com")
    for action, fields in (("role", {"role": "user"}), ("disable", {}), ("delete", {})):
        token = await token_of(client, "/admin/users")
        await client.post(
            f"/ui/admin/users/{admin.id}/{action}", data={**fields, "csrf_token": token}
        )
        html = (await client.get("/admin/users")).text
        assert flashes(html) == ["You cannot demote, disable or delete your own account."]
    user = await app.state.authenticator.users.get(admin.id)
    assert user.role == "admin"
    assert not user.disabled


async def test_posting_forms_without_a_login_goes_to_the_login_page(
    client: httpx.AsyncClient,
) -> None:
    """An anonymous form post is sent to sign in, then back to the form's page."""
    response = await client.post("/ui/password", data={})
    assert response.status_code == 303
    assert response.headers["location"] == "/login?notice=expired&next=/account"
    response = await client.post("/ui/admin/users/1/delete", data={})
    assert response.headers["location"] == "/login?notice=expired&next=/admin/users"
    page = await client.get(response.headers["location"])
    assert "Your session has ended. Please sign in again." in page.text


# -- helpers --------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("agent", "name"),
    [
        (
            "Mozilla/5.0 (Windows NT 10.0) AppleWebKit Chrome/120 Safari/537 Edg/120",
            "Edge on Windows",
        ),
        ("Mozilla/5.0 (iPhone; CPU iPhone OS 17_0 like Mac OS X) Safari/604", "Safari on iOS"),
        (
            "Mozilla/5.0 (X11; Linux x86_64) HeadlessChrome/120 Safari/537",
            "Headless Chrome on Linux",
        ),
        ("curl/8.5.0", "curl"),
        ("", "Unknown device"),
        ("something else", "Unknown browser"),
    ],
)
def test_device_names(agent: str, name: str) -> None:
    """User agents are summarised as "browser on system"."""
    assert device_name(agent) == name


def test_time_ago() -> None:
    """Relative times round down to the largest unit."""
    assert time_ago(100, 130) == "just now"
    assert time_ago(0, 60) == "1 minute ago"
    assert time_ago(0, 7200) == "2 hours ago"
    assert time_ago(0, 3 * 86400 + 5) == "3 days ago"
    assert time_ago(None, 0) == ""
