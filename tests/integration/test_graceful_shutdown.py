"""SIGTERM drains a real `sessionauth serve`: idle keep-alive connections answer, not reset."""

from __future__ import annotations

import http.client
import socket
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.support.live_server import LiveServer, deployment_env

CLIENTS = 30  # idle keep-alive connections when SIGTERM arrives
GRACE = 20.0  # --graceful-timeout: far above what the drain needs
WITHIN = 10.0  # seconds for the server to stop accepting, and then to exit


class DrainingServer(LiveServer):
    """``sessionauth serve --graceful-timeout GRACE``."""

    def _command(self) -> list[str]:
        return [*super()._command(), "--graceful-timeout", str(GRACE)]


@pytest.fixture(params=[1, 2], ids=["one worker", "two workers"])
def server(tmp_path: Path, request: pytest.FixtureRequest) -> Iterator[DrainingServer]:
    settings = deployment_env(
        database_url=f"sqlite:///{tmp_path / 'users.db'}",
        store_url=f"sqlite:///{tmp_path / 'sessions.db'}",
        data_dir=tmp_path / "data",
    )
    running = DrainingServer(settings, workers=request.param).start()
    try:
        yield running
    finally:
        running.close()


def refuses_connections(address: tuple[str, int]) -> bool:
    try:
        socket.create_connection(address, timeout=1.0).close()
    except ConnectionRefusedError:
        return True
    return False


def test_sigterm_answers_requests_on_idle_keep_alive_connections(server: DrainingServer) -> None:
    """After SIGTERM, new connections are refused and idle ones answer once, then close."""
    clients = [
        http.client.HTTPConnection(server.host, server.port, timeout=5) for _ in range(CLIENTS)
    ]
    try:
        assert_drained(server, clients)
    finally:
        for client in clients:
            client.close()


def assert_drained(server: DrainingServer, clients: list[http.client.HTTPConnection]) -> None:
    """Keep ``clients`` alive, SIGTERM the server, then send one more request on each."""
    for client in clients:
        client.request("GET", "/healthz")
        first = client.getresponse()
        first.read()
        assert (first.status, first.getheader("connection")) == (200, None)  # kept alive
    stopped = threading.Thread(target=server.stop, kwargs={"timeout": GRACE + 5})
    stopped.start()
    try:
        deadline = time.monotonic() + WITHIN
        while not refuses_connections(server.address):  # the drain has begun
            assert time.monotonic() < deadline, "the server still accepts connections"
            time.sleep(0.01)  # a poll interval under a hard deadline, not a synchronisation
        answers, failures = [], []
        for client in clients:
            try:
                client.request("GET", "/healthz")
                response = client.getresponse()
                response.read()
                answers.append((response.status, response.getheader("connection")))
            except (OSError, http.client.HTTPException) as exc:
                failures.append(repr(exc))
    finally:
        started_exit = time.monotonic()
        stopped.join()
    assert failures == [], f"{len(failures)} of {CLIENTS} requests failed: {failures[:3]}"
    assert answers == [(200, "close")] * CLIENTS
    assert time.monotonic() - started_exit < WITHIN, "the drain waited for its timeout"
    assert "Finished server process" in server.log_text()
