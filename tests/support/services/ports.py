"""Free loopback TCP ports for the private servers, never the same one twice in a run."""

from __future__ import annotations

import socket

LOOPBACK = "127.0.0.1"

_CLUSTER_BUS_OFFSET = 10_000

# Every port handed out so far (and every cluster bus port reserved), so none is reused.
_handed_out_ports: set[int] = set()


def free_port() -> int:
    """Return a loopback TCP port that nothing listens on right now.

    The port is released before returning, so another process could still take it; the
    private servers retry with a fresh port when their first start loses that race. The same
    port is never handed out twice within one test run.
    """
    while True:
        with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
            sock.bind((LOOPBACK, 0))
            port: int = sock.getsockname()[1]
        if port not in _handed_out_ports:
            _handed_out_ports.add(port)
            return port


def _port_is_free(port: int) -> bool:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        try:
            sock.bind((LOOPBACK, port))
        except OSError:
            return False
    return True


def free_cluster_port() -> int:
    """Return a free port whose cluster bus port (port + 10000) is free as well."""
    while True:
        port = free_port()
        bus = port + _CLUSTER_BUS_OFFSET
        if bus <= 65_535 and bus not in _handed_out_ports and _port_is_free(bus):
            _handed_out_ports.add(bus)
            return port
