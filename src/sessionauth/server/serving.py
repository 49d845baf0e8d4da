"""How ``sessionauth serve`` runs uvicorn: the port bound first, and a shutdown that drains.

* :func:`listen` binds the listening socket before anything else happens, so a port that is
  taken fails the start before the first start's one-time admin password is printed (the
  application's start-up creates that account; the password would otherwise be lost).
* :class:`DrainingHttpToolsProtocol` changes what uvicorn does with idle keep-alive connections
  on SIGTERM. Uvicorn closes them at once, and a request already on its way on one of them
  meets a closed socket: the client sees a reset. Draining keeps them open instead: the next
  request on each is answered with ``Connection: close`` and then the connection closes; a
  connection that stays silent closes when its keep-alive timeout runs out. New connections are
  refused from the start (the listening socket is closed), and the whole drain is bounded by
  ``--graceful-timeout``, after which unfinished requests are cancelled.
"""

from __future__ import annotations

import socket
import sys

from uvicorn import Config, Server
from uvicorn.protocols.http.httptools_impl import HttpToolsProtocol
from uvicorn.supervisors import Multiprocess

__all__ = ["DRAINING_PROTOCOL", "DrainingHttpToolsProtocol", "listen", "serve_on"]

DRAINING_PROTOCOL = f"{__name__}:DrainingHttpToolsProtocol"
"""The import string of :class:`DrainingHttpToolsProtocol`, for uvicorn's ``http`` option."""

_STARTUP_FAILURE = 3  # uvicorn's exit status when the application did not start


class DrainingHttpToolsProtocol(HttpToolsProtocol):
    """Uvicorn's httptools protocol, with a shutdown that lets idle connections drain."""

    _draining = False

    def shutdown(self) -> None:
        """Start draining: the request in progress, or else the next one, is the last."""
        self._draining = True
        if self.cycle is not None and not self.cycle.response_complete:
            self.cycle.keep_alive = False
        elif self.timeout_keep_alive_task is None:
            # A connection that never sent a request has no keep-alive timer yet.
            self.timeout_keep_alive_task = self.loop.call_later(
                self.timeout_keep_alive, self.timeout_keep_alive_handler
            )

    def on_headers_complete(self) -> None:
        """Start a request as uvicorn does; while draining, answer it with ``Connection: close``."""
        super().on_headers_complete()
        if self._draining and self.cycle is not None:
            self.cycle.keep_alive = False


class _DrainingWorkers(Multiprocess):
    """Uvicorn's worker supervisor, which also stops listening itself when told to stop.

    The supervisor holds the listening socket too (to start replacement workers); left open
    while the workers drain, it would let the kernel accept connections nobody serves.
    """

    def terminate_all(self) -> None:
        """Close the supervisor's listening socket, then ask every worker to drain."""
        for sock in self.sockets:
            sock.close()
        super().terminate_all()


def listen(host: str, port: int) -> socket.socket:
    """Bind and listen on ``host:port`` (IPv6 when the host has a colon).

    Raises:
        OSError: When the address is taken, not local, or not allowed.
    """
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    sock = socket.socket(family, socket.SOCK_STREAM)
    try:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.bind((host, port))
        sock.listen(2048)
    except OSError:
        sock.close()
        raise
    sock.set_inheritable(True)  # the worker processes serve it too
    return sock


def serve_on(sock: socket.socket, config: Config) -> None:
    """Run uvicorn on the already bound ``sock``, with ``config.workers`` processes.

    Exits with uvicorn's start-up failure status when a single worker failed to start.
    """
    server = Server(config=config)
    try:
        if config.workers > 1:
            _DrainingWorkers(config, sockets=[sock]).run()
        else:
            server.run(sockets=[sock])
    except KeyboardInterrupt:
        pass
    finally:
        sock.close()
    if config.workers == 1 and not server.started:
        sys.exit(_STARTUP_FAILURE)
