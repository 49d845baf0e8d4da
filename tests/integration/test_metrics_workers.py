"""``sessionauth serve --workers 2``: ``/metrics`` counts what every worker did, at every scrape.

The workers share one port, so a scrape reaches whichever accepts it. Before, each answered
with its own counts: a counter read 2, 3, 2, 3 from scrape to scrape, which Prometheus takes
for restarts. Now ``serve`` has the workers pool their samples (prometheus-client's
multiprocess mode) in a directory it makes for the run and removes at exit.
"""

from __future__ import annotations

import re
import uuid
from pathlib import Path

import httpx

from tests.support.live_server import deployment_env, live_servers, new_client

FAILED_LOGINS = 4
SCRAPES = 8
_FAILED = re.compile(r'^sessionauth_logins_total\{result="failed"\} (\S+)$', re.MULTILINE)


async def fresh_connection_get(url: str) -> httpx.Response:
    """One request on a connection of its own, so the kernel may hand it to either worker."""
    async with new_client() as client:
        return await client.get(url)


async def test_every_scrape_counts_the_failed_logins_of_both_workers(tmp_path: Path) -> None:
    """Failed logins spread over two workers; eight scrapes, each the total."""
    settings = deployment_env(
        database_url=f"sqlite:///{tmp_path / 'users.db'}",
        store_url=f"sqlite:///{tmp_path / 'sessions.db'}",
        data_dir=tmp_path / "data",
    )
    with live_servers() as pool:
        server = pool.start(settings, workers=2)
        for _ in range(FAILED_LOGINS):
            async with new_client() as client:
                email = f"nobody-{uuid.uuid4().hex[:8]}@example.com"
                answer = await client.post(
                    f"{server.url}/login", json={"email": email, "password": "wrong password"}
                )
                assert answer.status_code == 401, answer.text
        counts = []
        for _ in range(SCRAPES):
            scraped = await fresh_connection_get(f"{server.url}/metrics")
            assert scraped.status_code == 200, scraped.text
            found = _FAILED.search(scraped.text)
            counts.append(float(found.group(1)) if found else 0.0)
        assert counts == [float(FAILED_LOGINS)] * SCRAPES, f"scrapes read {counts}"
