"""The password step never refills the code guesses (found by an attack review: it did).

Wrong TOTP codes count on the same per-account counter as wrong passwords, but a right
password *clears* that counter (``LoginThrottle.succeeded``). Whoever knows the password (the
one case a second factor exists for) re-does ``POST /login`` before the limit is reached and
gets a fresh budget of code guesses, again and again within one throttle window.
"""

from __future__ import annotations

from tests.integration.test_mfa_api import _enrolled, _held
from tests.support.mfa_server import SQLITE_OR_REDIS, MfaServer, mfa_server_fixture

ACCOUNT_LIMIT = 5  # LoginThrottle's default max_per_account, which the server uses


server = mfa_server_fixture(SQLITE_OR_REDIS)


async def test_password_step_does_not_refill_the_code_guess_budget(server: MfaServer) -> None:
    """An attacker with the password gets no more wrong codes judged than the account limit.

    Three rounds of "password, then four wrong codes" in one window: every code is judged
    (401 Invalid code, never 429), so 12 guesses pass a limit of 5.
    """
    await _enrolled(server, "ann@example.com")
    judged = 0
    for _ in range(3):
        client, token = await _held(server, "ann@example.com")
        for _ in range(ACCOUNT_LIMIT - 1):
            response = await client.post("/login/mfa", json={"code": "000000"}, headers=token)
            if response.status_code == 401 and response.json() == {"error": "Invalid code"}:
                judged += 1
    assert judged <= ACCOUNT_LIMIT, f"{judged} wrong TOTP codes judged in one window"
