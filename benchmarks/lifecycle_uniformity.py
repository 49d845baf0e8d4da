"""Do sign-up and "forgot password" answer alike for addresses with and without an account?

Issue 15: ``POST /signup`` and ``POST /password/forgot`` must give the same status, body and
timing whether the address has an account or not (target: medians within 25 %). Tests assert
the structure that makes them uniform (one password hash either way, the mail sent in the
background); this script measures the timing, which a test could only assert flakily.

Usage::

    python benchmarks/lifecycle_uniformity.py [--requests 30] [--hasher owasp|tests]

The reference server runs in process (httpx ``ASGITransport``) over SQLite in a temporary
directory, with the production password hasher by default (argon2id at OWASP's parameters)
and the development file mailer. Each round sends one request for an address with an account
and one for an address without, alternately first, each from its own client address and to
its own recipient (so the mail throttle never answers 429). The background mail of a request
is drained, untimed, before the next one: the times are those of the answers alone. Printed:
the statuses and bodies seen for each kind, and the median and 90th percentile per kind.
"""

from __future__ import annotations

import argparse
import asyncio
import statistics
import sys
import tempfile
import time
from pathlib import Path

import httpx

from sessionauth.auth.passwords import PasswordHasher
from sessionauth.server.app import create_app
from sessionauth.server.settings import Settings

PASSWORD = "correct horse battery staple"
TARGET = 0.25


async def _measure(requests: int, hasher: PasswordHasher, directory: Path) -> bool:
    settings = Settings(
        env="development",
        database_url=f"sqlite:///{directory / 'users.db'}",
        data_dir=directory / "data",
        secret="s" * 40,
        signup="open",
        public_url="https://auth.example.com",
    )
    app = create_app(settings, hasher=hasher)
    uniform = True
    async with app.router.lifespan_context(app):
        auth = app.state.authenticator
        password_hash = await auth.hasher.hash(PASSWORD)
        existing = [f"member{n}@example.com" for n in range(2 * requests)]
        for email in existing:
            await auth.users.create(email, password_hash)
        for route in ("/signup", "/password/forgot"):
            times: dict[str, list[float]] = {"existing": [], "unknown": []}
            answers: dict[str, set[tuple[int, str]]] = {"existing": set(), "unknown": set()}
            for n in range(requests):
                order = ["existing", "unknown"] if n % 2 else ["unknown", "existing"]
                for kind in order:
                    email = (
                        existing[n + (requests if route == "/password/forgot" else 0)]
                        if kind == "existing"
                        else f"stranger{n}.{route[1:5]}@example.com"
                    )
                    body = {"email": email}
                    if route == "/signup":
                        body["password"] = PASSWORD
                    peer = (f"198.51.{n // 200}.{(n % 200) * 2 + (kind == 'unknown')}", 4000)
                    transport = httpx.ASGITransport(app=app, client=peer)
                    async with httpx.AsyncClient(
                        transport=transport, base_url="http://testserver"
                    ) as client:
                        start = time.perf_counter()
                        response = await client.post(route, json=body)
                        times[kind].append(time.perf_counter() - start)
                    answers[kind].add((response.status_code, response.text))
                    await app.state.lifecycle.drain()
            uniform &= _report(route, times, answers)
        await app.state.outbox.join()
    return uniform


def _report(
    route: str, times: dict[str, list[float]], answers: dict[str, set[tuple[int, str]]]
) -> bool:
    medians = {kind: statistics.median(values) for kind, values in times.items()}
    spread = abs(medians["existing"] - medians["unknown"]) / min(medians.values())
    same = answers["existing"] == answers["unknown"] and len(answers["existing"]) == 1
    print(f"POST {route}")
    for kind, values in times.items():
        p90 = statistics.quantiles(values, n=10)[-1]
        print(
            f"  {kind:8}  n={len(values):3}  median {medians[kind] * 1000:7.2f} ms"
            f"  p90 {p90 * 1000:7.2f} ms  answers {sorted(answers[kind])}"
        )
    verdict = "ok" if spread <= TARGET and same else "NOT UNIFORM"
    print(f"  medians differ by {spread:.1%} (target <= {TARGET:.0%}); same answers: {same}")
    print(f"  -> {verdict}")
    return spread <= TARGET and same


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--requests", type=int, default=30, help="requests per kind")
    parser.add_argument(
        "--hasher",
        choices=("owasp", "tests"),
        default="owasp",
        help="argon2id at OWASP's parameters (production), or the tests' cheap one",
    )
    args = parser.parse_args()
    hasher = PasswordHasher() if args.hasher == "owasp" else PasswordHasher.for_tests()
    with tempfile.TemporaryDirectory(prefix="lifecycle-uniformity-") as directory:
        uniform = asyncio.run(_measure(args.requests, hasher, Path(directory)))
    return 0 if uniform else 1


if __name__ == "__main__":
    sys.exit(main())
