"""Idle, absolute and renewal timeouts, and touch throttling, with a clock moved by hand."""

from __future__ import annotations

from sessionauth.policy import TimeoutPolicy
from sessionauth.tokens import storage_id
from tests.unit.test_middleware import NAME, cookie_value, make_env

MINUTE = 60.0
HOUR = 3600.0


async def test_idle_session_expires_and_its_cookie_is_cleared() -> None:
    """A session unused for idle_timeout is gone, and the response clears the cookie."""
    env = make_env(TimeoutPolicy(idle_timeout=HOUR, absolute_timeout=10 * HOUR))
    async with env.client:
        cookie = await env.login()
        env.clock.advance(HOUR - 1)
        assert (await env.get("/read", cookie)).json()["user"] == "1"
        env.clock.advance(HOUR)  # the read above did not write: the deadline did not move
        response = await env.get("/read", cookie)
    assert response.json()["user"] is None
    assert response.headers["set-cookie"].startswith(f"{NAME}=;")


async def test_activity_extends_the_idle_deadline_through_touches() -> None:
    """Requests spaced under idle_timeout keep a session alive past several idle periods."""
    env = make_env(
        TimeoutPolicy(idle_timeout=HOUR, absolute_timeout=10 * HOUR, touch_interval=MINUTE)
    )
    async with env.client:
        cookie = await env.login()
        for _ in range(5):
            env.clock.advance(HOUR - MINUTE)
            assert (await env.get("/read", cookie)).json()["user"] == "1"
        assert env.store.calls["touch"] == 5


async def test_steady_activity_never_outlives_the_absolute_timeout() -> None:
    """However active, a session dies absolute_timeout after login."""
    env = make_env(
        TimeoutPolicy(idle_timeout=HOUR, absolute_timeout=3 * HOUR, touch_interval=MINUTE)
    )
    async with env.client:
        cookie = await env.login()
        elapsed = 0.0
        while elapsed + 10 * MINUTE < 3 * HOUR:
            env.clock.advance(10 * MINUTE)
            elapsed += 10 * MINUTE
            assert (await env.get("/write?n=1", cookie)).status_code == 200
            assert (await env.get("/read", cookie)).json()["user"] == "1"
        env.clock.advance(3 * HOUR - elapsed)
        assert (await env.get("/read", cookie)).json()["user"] is None


async def test_touch_writes_at_most_once_per_interval() -> None:
    """Many reads inside one touch_interval write nothing; the first one after it touches once."""
    env = make_env(TimeoutPolicy(touch_interval=5 * MINUTE))
    async with env.client:
        cookie = await env.login()
        env.store.calls.clear()
        for _ in range(20):
            env.clock.advance(10)  # 200 s in all: under the interval
            await env.get("/read", cookie)
        assert env.store.writes == 0
        env.clock.advance(100)
        await env.get("/read", cookie)
        await env.get("/read", cookie)
        assert env.store.calls["touch"] == 1
        assert env.store.calls["load"] == 22


async def test_renewal_rotates_the_token_and_keeps_the_session() -> None:
    """Past renewal_interval the next request gets a new token; the old one stops working.

    It stops at once with ``renewal_grace=0``; by default it leads to the renewed session for
    the grace (see test_renewal_grace.py).
    """
    env = make_env(TimeoutPolicy(renewal_interval=HOUR, renewal_grace=0))
    async with env.client:
        old = await env.login()
        env.clock.advance(HOUR - 1)
        assert "set-cookie" not in (await env.get("/read", old)).headers
        env.clock.advance(1)
        response = await env.get("/read", old)
        new = cookie_value(response)
        assert new != old
        assert (await env.get("/read", new)).json() == {"data": {"theme": "dark"}, "user": "1"}
        assert (await env.get("/read", old)).json()["user"] is None
        assert await env.memory.load(storage_id(old.split(".")[0])) is None
        assert len(env.memory) == 1


async def test_renewal_keeps_the_absolute_deadline() -> None:
    """Rotating the token does not restart the absolute timeout."""
    env = make_env(
        TimeoutPolicy(idle_timeout=HOUR, absolute_timeout=2 * HOUR, renewal_interval=30 * MINUTE)
    )
    async with env.client:
        cookie = await env.login()
        for _ in range(3):
            env.clock.advance(35 * MINUTE)
            response = await env.get("/read", cookie)
            assert response.json()["user"] == "1"
            cookie = cookie_value(response)
        env.clock.advance(2 * HOUR - 105 * MINUTE)
        assert (await env.get("/read", cookie)).json()["user"] is None


async def test_cookie_max_age_reaches_the_absolute_deadline() -> None:
    """A remembered login's persistent cookie lives until the absolute deadline, not longer."""
    env = make_env(TimeoutPolicy(absolute_timeout=2 * HOUR))
    async with env.client:
        response = await env.get("/login?remember=1")
    assert f"Max-Age={int(2 * HOUR)}" in response.headers["set-cookie"]


async def test_a_login_not_remembered_gets_a_browser_session_cookie() -> None:
    """Without remember-me the cookie has neither Max-Age nor Expires, renewed or not."""
    env = make_env(TimeoutPolicy(renewal_interval=HOUR))
    async with env.client:
        response = await env.get("/login")
        env.clock.advance(HOUR)
        renewed = await env.get("/read", cookie_value(response))
    for header in (response.headers["set-cookie"], renewed.headers["set-cookie"]):
        assert "max-age" not in header.lower()
        assert "expires" not in header.lower()


async def test_a_login_not_remembered_dies_at_the_short_absolute_timeout() -> None:
    """However active, a session without remember-me dies short_absolute_timeout after login."""
    env = make_env(
        TimeoutPolicy(
            idle_timeout=2 * HOUR, absolute_timeout=10 * HOUR, short_absolute_timeout=3 * HOUR
        )
    )
    async with env.client:
        forgetful = await env.login()
        env.client.cookies.clear()  # a second browser: its login must not replace the first
        remembered = cookie_value(await env.get("/login?remember=1"))
        for _ in range(3):  # 2 h 15 min of requests, each within the idle timeout
            env.clock.advance(45 * MINUTE)
            assert (await env.get("/write?n=1", forgetful)).status_code == 200
            assert (await env.get("/read", forgetful)).json()["user"] == "1"
            assert (await env.get("/write?n=1", remembered)).status_code == 200
        env.clock.advance(45 * MINUTE)  # 3 h after the login
        assert (await env.get("/read", forgetful)).json()["user"] is None
        assert (await env.get("/read", remembered)).json()["user"] == "1"
