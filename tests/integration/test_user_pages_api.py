"""Paging and search of accounts: `GET /users` (limit, cursor, q) and the `/admin/users` page."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import httpx
import pytest

from sessionauth.auth.passwords import PasswordHasher
from tests.support.apps import running_app

PASSWORD = "correct horse battery"


@pytest.fixture
async def admin(tmp_path: Path) -> AsyncIterator[httpx.AsyncClient]:
    """A client signed in as an administrator; 13 accounts with the start-up's admin@localhost."""
    async with running_app(tmp_path) as app:
        auth = app.state.authenticator
        password_hash = await PasswordHasher.for_tests().hash(PASSWORD)
        await auth.users.create("root@example.com", password_hash, role="admin")
        for n in range(10):
            await auth.users.create(f"user{n}@example.com", password_hash)
        await auth.users.create("100%_off@example.com", password_hash)
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://testserver") as client:
            login = await client.post(
                "/login", json={"email": "root@example.com", "password": PASSWORD}
            )
            assert login.status_code == 200
            yield client


async def emails(client: httpx.AsyncClient, **params: str | int) -> tuple[list[str], str | None]:
    response = await client.get("/users", params=params)
    assert response.status_code == 200, response.text
    body = response.json()
    assert set(body) == {"users", "nextCursor"}
    return [user["email"] for user in body["users"]], body["nextCursor"]


async def test_without_parameters_every_account_comes_back_with_no_cursor(
    admin: httpx.AsyncClient,
) -> None:
    """The old call (no query) still lists every account, oldest first; nextCursor is null."""
    listed, cursor = await emails(admin)
    assert listed[:2] == ["admin@localhost", "root@example.com"]
    assert len(listed) == 13
    assert cursor is None


async def test_limit_and_cursor_walk_the_accounts_page_by_page(admin: httpx.AsyncClient) -> None:
    """limit=5 gives pages of 5, 5, 3; following nextCursor lists each account exactly once."""
    everyone, _ = await emails(admin)
    walked, sizes, cursor = [], [], None
    while True:
        params: dict[str, str | int] = {"limit": 5}
        if cursor is not None:
            params["cursor"] = cursor
        page, cursor = await emails(admin, **params)
        walked.extend(page)
        sizes.append(len(page))
        if cursor is None:
            break
    assert sizes == [5, 5, 3]
    assert walked == everyone


async def test_q_matches_part_of_the_email_in_any_case(admin: httpx.AsyncClient) -> None:
    """q=USER1 finds user1@ only; q=EXAMPLE.com finds everyone but admin@localhost."""
    assert (await emails(admin, q="USER1"))[0] == ["user1@example.com"]
    assert len((await emails(admin, q="EXAMPLE.com"))[0]) == 12


@pytest.mark.parametrize("q", ["%", "_", "0%_"])
async def test_wildcards_in_q_match_literally(admin: httpx.AsyncClient, q: str) -> None:
    """`%` and `_` in q are characters of the email, not LIKE wildcards."""
    assert (await emails(admin, q=q))[0] == ["100%_off@example.com"]


@pytest.mark.parametrize(
    "params",
    [
        {"limit": 0},
        {"limit": 201},
        {"limit": "ten"},
        {"cursor": "0"},
        {"cursor": "-5"},
        {"cursor": "abc"},
        {"q": "x" * 255},
    ],
    ids=["limit-0", "limit-201", "limit-text", "cursor-0", "cursor-neg", "cursor-text", "q-long"],
)
async def test_bad_parameters_are_a_400_json_error(
    admin: httpx.AsyncClient, params: dict[str, str | int]
) -> None:
    """An out-of-range limit, a malformed cursor or an overlong q: 400 {"error": ...}."""
    response = await admin.get("/users", params=params)
    assert response.status_code == 400
    assert response.headers["content-type"] == "application/json"
    assert isinstance(response.json()["error"], str)


async def test_a_cursor_past_every_account_is_an_empty_last_page(admin: httpx.AsyncClient) -> None:
    """A cursor beyond the largest id (even beyond 64 bits) answers no users and no cursor."""
    assert await emails(admin, cursor="9" * 19) == ([], None)


async def test_paging_stays_for_administrators(tmp_path: Path) -> None:
    """Anonymous: 401; a signed-in non-admin: 403, whatever the parameters."""
    async with running_app(tmp_path) as app:
        password_hash = await PasswordHasher.for_tests().hash(PASSWORD)
        await app.state.authenticator.users.create("u@example.com", password_hash)
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://testserver") as client:
            assert (await client.get("/users", params={"q": "u"})).status_code == 401
            await client.post("/login", json={"email": "u@example.com", "password": PASSWORD})
            assert (await client.get("/users", params={"limit": 1})).status_code == 403


@pytest.mark.parametrize(
    "query",
    ["after=abc", "before=-3", "after=0", "before=" + "9" * 40, "q=" + "%25" * 5000],
    ids=["after-text", "before-negative", "after-zero", "before-huge", "q-huge"],
)
async def test_the_admin_page_shows_the_first_page_for_a_malformed_bound(
    admin: httpx.AsyncClient, query: str
) -> None:
    """/admin/users with a bad after/before shows page one; an absurd q shows no rows, no error."""
    response = await admin.get(f"/admin/users?{query}", headers={"accept": "text/html"})
    assert response.status_code == 200
    if query.startswith("q="):
        assert "user0@example.com" not in response.text
    else:
        assert "admin@localhost" in response.text  # the first account: page one
        assert 'rel="prev"' not in response.text


async def test_the_admin_page_links_the_next_page_keeping_the_search(tmp_path: Path) -> None:
    """55 matches: page one shows 50 and a Next link with q and the last id; it shows 5 more."""
    async with running_app(tmp_path) as app:
        users = app.state.authenticator.users
        password_hash = await PasswordHasher.for_tests().hash(PASSWORD)
        await users.create("root@example.com", password_hash, role="admin")
        bulk = [await users.create(f"bulk{n}@example.com", password_hash) for n in range(55)]
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://testserver") as client:
            await client.post("/login", json={"email": "root@example.com", "password": PASSWORD})
            first = await client.get("/admin/users?q=BULK", headers={"accept": "text/html"})
            next_link = f'href="/admin/users?q=BULK&amp;after={bulk[49].id}" rel="next"'
            assert next_link in first.text
            assert first.text.count('<td class="email">') == 50
            second = await client.get(
                f"/admin/users?q=BULK&after={bulk[49].id}", headers={"accept": "text/html"}
            )
            assert second.text.count('<td class="email">') == 5
            assert f'href="/admin/users?q=BULK&amp;before={bulk[50].id}" rel="prev"' in second.text
