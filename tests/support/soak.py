"""The soak driver: simulated users against several ``sessionauth serve`` processes.

`soak` starts the processes on one session store, creates one account per simulated user up
front, then runs every user as an asyncio task for ``duration_s`` seconds. Each request goes
to a process picked at random, as behind a load balancer. A user's loop:

1. log in (own account, own ``User-Agent``);
2. read ``/dashboard`` and ``/me``; write with ``POST /api/transfer`` (CSRF token first);
3. one loop in three, log in a second session and revoke it from the first (by handle, or with
   ``revoke-others``), then check the revoked cookie answers 401;
4. list ``/sessions``, revoke the others, log out, and check the old cookie answers 401.

It records every answer and flags as errors: any 5xx or transport failure; any answer carrying
another user's identity (``/me``, ``/dashboard``, the login answer, a listed session's user
agent); any session lost (401 on a session its user neither logged out nor revoked); any
session that outlives its logout or revocation; and any other status the contract does not
give. Used by ``tests/integration/test_soak.py`` (short) and ``benchmarks/soak.py`` (long).
"""

from __future__ import annotations

import asyncio
import collections
import random
import statistics
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, NoReturn

import httpx

from tests.support.live_server import (
    PASSWORD,
    Agent,
    LiveServer,
    create_user,
    deployment_env,
    live_servers,
    new_client,
)

SECOND_SESSION_ODDS = 1 / 3
ACCOUNT_CREATORS = 8  # concurrent POST /users while setting up
MAX_LOOPS_PER_SECOND = 50  # per user: bounds the loop count whatever the server's speed
SHUTDOWN_GRACE = 60.0  # seconds past the duration before the driver gives up on stragglers
MAX_ERRORS_KEPT = 200


@dataclass
class SoakReport:
    """What a soak run did and what went wrong.

    Attributes:
        duration_s: Requested duration of the load phase.
        users: Simulated users.
        processes: Server processes.
        elapsed_s: Actual duration of the load phase.
        statuses: Count of answers per status code.
        latencies: Seconds per answer, by route (``"GET /dashboard"``).
        loops: Completed user loops.
        logins: Successful logins.
        revoked: Sessions ended by revocation (by handle or revoke-others).
        errors: Descriptions of the failures (the first `MAX_ERRORS_KEPT`).
        error_count: How many failures, kept or not.
        server_errors: Unhandled-exception lines from the servers' logs.
    """

    duration_s: float
    users: int
    processes: int
    elapsed_s: float = 0.0
    statuses: collections.Counter[int] = field(default_factory=collections.Counter)
    latencies: dict[str, list[float]] = field(default_factory=lambda: collections.defaultdict(list))
    loops: int = 0
    logins: int = 0
    revoked: int = 0
    errors: list[str] = field(default_factory=list)
    error_count: int = 0
    server_errors: list[str] = field(default_factory=list)

    @property
    def requests(self) -> int:
        """Answers received (transport failures are errors, not requests)."""
        return sum(self.statuses.values())

    @property
    def ok(self) -> bool:
        """Whether nothing went wrong, in the driver's view or in the servers' logs."""
        return self.error_count == 0 and not self.server_errors

    def fail(self, message: str) -> None:
        """Record one failure."""
        self.error_count += 1
        if len(self.errors) < MAX_ERRORS_KEPT:
            self.errors.append(message)

    def summary(self) -> str:
        """A printable report: counts, per-route p50/p99, and the first errors."""
        rate = self.requests / self.elapsed_s if self.elapsed_s else 0.0
        lines = [
            f"soak: {self.users} users, {self.processes} processes, "
            f"{self.elapsed_s:.1f} s (asked {self.duration_s:g} s)",
            f"requests {self.requests} ({rate:.0f}/s), loops {self.loops}, "
            f"logins {self.logins}, revoked {self.revoked}, errors {self.error_count}, "
            f"server exceptions {len(self.server_errors)}",
            "statuses " + ", ".join(f"{k}: {v}" for k, v in sorted(self.statuses.items())),
            f"{'route':<32} {'count':>7} {'p50 ms':>8} {'p99 ms':>8} {'max ms':>8}",
        ]
        for route, values in sorted(self.latencies.items()):
            p50, p99 = _percentile(values, 50), _percentile(values, 99)
            lines.append(
                f"{route:<32} {len(values):>7} {p50 * 1e3:>8.1f} {p99 * 1e3:>8.1f} "
                f"{max(values) * 1e3:>8.1f}"
            )
        lines += [f"error: {e}" for e in self.errors[:20]]
        lines += [f"server: {e}" for e in self.server_errors[:10]]
        return "\n".join(lines)


def _percentile(values: Sequence[float], q: int) -> float:
    if len(values) < 2:
        return values[0] if values else 0.0
    return statistics.quantiles(values, n=100, method="inclusive")[q - 1]


class _Abandon(Exception):
    """This loop cannot go on (the failure is already recorded); start the next one."""


@dataclass
class _Browser:
    agent: Agent
    live: bool = False  # signed in, and neither logged out nor revoked by its user


class SimulatedUser:
    """One account's owner, looping through the soak scenario.

    Args:
        index: The user's number (its ``User-Agent`` is ``soak-user-<index>``).
        user_id: Its account's id.
        email: Its account's email.
        urls: The server processes' base URLs.
        client: The shared HTTP client.
        report: Where answers and failures go.
    """

    def __init__(
        self,
        index: int,
        user_id: int,
        email: str,
        urls: Sequence[str],
        client: httpx.AsyncClient,
        report: SoakReport,
    ) -> None:
        self.user_id = user_id
        self.email = email
        self.urls = list(urls)
        self.client = client
        self.report = report
        self.user_agent = f"soak-user-{index}"
        self.rng = random.Random(index)

    def _browser(self) -> _Browser:
        return _Browser(Agent(self.client, user_agent=self.user_agent))

    async def call(
        self,
        browser: _Browser,
        method: str,
        path: str,
        *,
        route: str | None = None,
        json: Any = None,
        csrf: bool = False,
        expect: int = 200,
    ) -> httpx.Response:
        """Send one request (after a CSRF token, if asked) to a random process and check it.

        Raises:
            _Abandon: After recording a failure.
        """
        headers = {}
        if csrf:
            token = await self.call(browser, "GET", "/csrf-token")
            headers["x-csrf-token"] = token.json()["csrfToken"]
        base = self.rng.choice(self.urls)
        route = route or f"{method} {path}"
        started = time.monotonic()
        try:
            response = await browser.agent.request(method, base + path, json=json, headers=headers)
        except httpx.HTTPError as exc:
            self._fail(f"{route} on {base}: {type(exc).__name__}: {exc}")
        self.report.latencies[route].append(time.monotonic() - started)
        self.report.statuses[response.status_code] += 1
        status = response.status_code
        if status >= 500:
            self._fail(f"{route} on {base}: {status} {response.text[:200]}")
        if status == 401 and browser.live:
            self._fail(f"session lost: {route} on {base} answered 401 to a live session")
        if status != expect:
            what = "survived its end" if status == 200 and expect == 401 else "unexpected"
            self._fail(f"{route} on {base}: {what}: {status}, expected {expect}: {response.text}")
        return response

    def _fail(self, message: str) -> NoReturn:
        self.report.fail(f"user {self.user_id}: {message}")
        raise _Abandon

    def _same_user(self, route: str, found: Any, expected: Any) -> None:
        if found != expected:
            self._fail(f"another user's identity on {route}: {found!r}, expected {expected!r}")

    async def login(self, browser: _Browser) -> None:
        """Log ``browser`` in with the user's own account."""
        body = {"email": self.email, "password": PASSWORD}
        response = await self.call(browser, "POST", "/login", json=body)
        user = response.json()["user"]
        self._same_user("POST /login", (user["id"], user["email"]), (self.user_id, self.email))
        if browser.agent.cookie is None:
            self._fail("POST /login answered 200 without a session cookie")
        browser.live = True
        self.report.logins += 1

    async def sessions(self, browser: _Browser) -> list[dict[str, Any]]:
        """``GET /sessions``, checked: only this user's sessions, exactly one current."""
        listed: list[dict[str, Any]] = (await self.call(browser, "GET", "/sessions")).json()[
            "sessions"
        ]
        for agent in {s["user_agent"] for s in listed}:
            self._same_user("GET /sessions", agent, self.user_agent)
        if sum(s["current"] for s in listed) != 1:
            self._fail(f"GET /sessions: not exactly one current session: {listed}")
        return listed

    async def loop_once(self) -> None:
        """One pass through the scenario (see the module docstring)."""
        main = self._browser()
        await self.login(main)
        dashboard = await self.call(main, "GET", "/dashboard")
        self._same_user("GET /dashboard", dashboard.json(), {"userId": self.user_id})
        me = (await self.call(main, "GET", "/me")).json()
        self._same_user("GET /me", (me["id"], me["email"]), (self.user_id, self.email))
        amount = self.rng.randint(1, 1000)
        moved = await self.call(main, "POST", "/api/transfer", json={"amount": amount}, csrf=True)
        self._same_user("POST /api/transfer", moved.json().get("amount"), amount)

        if self.rng.random() < SECOND_SESSION_ODDS:
            await self.second_session(main)

        await self.sessions(main)
        await self.call(main, "POST", "/sessions/revoke-others", csrf=True)
        ended = Agent(self.client, cookie=main.agent.cookie)
        await self.call(main, "POST", "/logout", csrf=True)
        main.live = False
        if main.agent.cookie is not None:
            self._fail("POST /logout did not clear the cookie")
        await self.call(
            _Browser(ended), "GET", "/dashboard", route="GET /dashboard (ended)", expect=401
        )
        self.report.loops += 1

    async def second_session(self, main: _Browser) -> None:
        """Log in elsewhere, revoke that session from ``main``, check it is gone."""
        second = self._browser()
        await self.login(second)
        others = [s["handle"] for s in await self.sessions(main) if not s["current"]]
        if not others:
            self._fail("GET /sessions does not list the second session")
        if self.rng.random() < 0.5:
            for handle in others:
                await self.call(
                    main, "DELETE", f"/sessions/{handle}", route="DELETE /sessions/{h}", csrf=True
                )
            self.report.revoked += len(others)
        else:
            response = await self.call(main, "POST", "/sessions/revoke-others", csrf=True)
            self.report.revoked += int(response.json()["revoked"])
        second.live = False
        await self.call(second, "GET", "/dashboard", route="GET /dashboard (ended)", expect=401)

    async def run(self, deadline: float, max_loops: int) -> None:
        """Loop until ``deadline`` (monotonic) or ``max_loops``, whichever comes first."""
        for _ in range(max_loops):
            if time.monotonic() >= deadline:
                return
            try:
                await self.loop_once()
            except _Abandon:
                continue


async def create_accounts(
    client: httpx.AsyncClient, urls: Sequence[str], admin_email: str, count: int, tag: str
) -> list[tuple[int, str]]:
    """Create ``count`` accounts through the admin API (``POST /users``); return id and email.

    The CLI would take a process start per account; the API spreads the hashing over the
    server processes.
    """
    admin = Agent(client)
    response = await admin.login(urls[0], admin_email)
    if response.status_code != 200:
        raise AssertionError(f"admin login: {response.status_code} {response.text}")
    slots = asyncio.Semaphore(ACCOUNT_CREATORS)

    async def create(index: int) -> tuple[int, str]:
        email = f"soak-{tag}-{index}@example.com"
        url = urls[index % len(urls)]
        async with slots:
            made = await admin.request(
                "POST",
                f"{url}/users",
                json={"email": email, "password": PASSWORD, "role": "user"},
                csrf_from=url,
            )
        if made.status_code != 201:
            raise AssertionError(f"POST /users {email}: {made.status_code} {made.text}")
        return int(made.json()["user"]["id"]), email

    return list(await asyncio.gather(*(create(i) for i in range(count))))


async def drive(
    servers: Sequence[LiveServer], admin_email: str, duration_s: float, users: int, tag: str
) -> SoakReport:
    """Create the accounts, then run ``users`` simulated users for ``duration_s`` seconds."""
    report = SoakReport(duration_s=duration_s, users=users, processes=len(servers))
    urls = [server.url for server in servers]
    limits = httpx.Limits(max_connections=users + ACCOUNT_CREATORS, max_keepalive_connections=users)
    async with new_client(limits=limits) as client:
        accounts = await create_accounts(client, urls, admin_email, users, tag)
        started = time.monotonic()
        deadline = started + duration_s
        max_loops = max(1, int(duration_s * MAX_LOOPS_PER_SECOND))
        simulated = [
            SimulatedUser(i, user_id, email, urls, client, report)
            for i, (user_id, email) in enumerate(accounts)
        ]
        async with asyncio.timeout(duration_s + SHUTDOWN_GRACE):
            await asyncio.gather(*(user.run(deadline, max_loops) for user in simulated))
        report.elapsed_s = time.monotonic() - started
    return report


def soak(
    duration_s: float,
    users: int,
    processes: int = 2,
    *,
    store_url: str,
    workdir: Path,
) -> SoakReport:
    """Run a soak: ``processes`` servers on ``store_url``, ``users`` users, ``duration_s`` s.

    Users live in a SQLite file under ``workdir`` shared by the processes; the servers are
    stopped before returning and their unhandled exceptions copied into the report.

    Args:
        duration_s: Seconds of load.
        users: Simulated users (one account each).
        processes: ``sessionauth serve`` processes, all on ``store_url``.
        store_url: The shared session store (a Redis URL with ``?prefix=`` on shared servers).
        workdir: An empty directory for the users database and the data directory.
    """
    settings = deployment_env(
        database_url=f"sqlite:///{workdir / 'users.db'}",
        store_url=store_url,
        data_dir=workdir / "data",
    )
    tag = workdir.name.replace("_", "-")[-12:]
    admin_email = f"soak-admin-{tag}@example.com"
    create_user(settings, admin_email, role="admin")
    with live_servers() as pool:
        servers = [pool.start(settings) for _ in range(processes)]
        report = asyncio.run(drive(servers, admin_email, duration_s, users, tag))
        for server in servers:
            if not server.running:
                report.fail(f"server {server.url} died during the soak")
            report.server_errors += server.server_errors()
    return report
