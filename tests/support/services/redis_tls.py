"""A private Redis speaking only TLS (a CA made here with ``openssl``), with an ACL user.

The server has no plain-text port and its ``default`` user is off: the only way in is TLS,
verified against the test's own CA, as `USER` with `PASSWORD`, and that user may touch only
keys matching `KEY_PATTERN` (so a store that strays outside its prefix fails loudly).
"""

from __future__ import annotations

import subprocess
from pathlib import Path
from typing import Any
from urllib.parse import quote

from tests.support.services.policy import ServiceUnavailable
from tests.support.services.process import binary
from tests.support.services.redis_servers import RedisServer

USER = "sessionauth"
PASSWORD = "tls-acl-test-password"
KEY_PATTERN = "satest:*"


def _openssl(*args: str, cwd: Path) -> None:
    result = subprocess.run(  # noqa: S603 - openssl found on PATH, fixed arguments
        [binary("openssl"), *args], cwd=cwd, capture_output=True, text=True, timeout=60
    )
    if result.returncode != 0:
        raise ServiceUnavailable(f"openssl {args[0]} failed: {result.stderr}")


def make_certificates(directory: Path, host: str) -> None:
    """Write ``ca.crt`` and a ``server.crt``/``server.key`` it signs for ``host`` (an IP)."""
    _openssl("req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "2",
             "-subj", "/CN=sessionauth test CA", "-keyout", "ca.key", "-out", "ca.crt",
             cwd=directory)  # fmt: skip
    _openssl("req", "-newkey", "rsa:2048", "-nodes", "-subj", f"/CN={host}",
             "-keyout", "server.key", "-out", "server.csr", cwd=directory)  # fmt: skip
    (directory / "san.ext").write_text(f"subjectAltName=IP:{host}\n")
    _openssl("x509", "-req", "-in", "server.csr", "-CA", "ca.crt", "-CAkey", "ca.key",
             "-CAcreateserial", "-days", "2", "-extfile", "san.ext", "-out", "server.crt",
             cwd=directory)  # fmt: skip


class RedisTLSServer(RedisServer):
    """``redis-server`` on a TLS port only, with ``default`` off and one limited ACL user."""

    kind = "redis-tls"

    @property
    def ca_file(self) -> Path:
        """The CA certificate that signed the server's certificate."""
        return self.directory / "ca.crt"

    @property
    def url(self) -> str:
        """A ``rediss://user:password@host:port/0`` URL trusting the test CA."""
        ca = quote(str(self.ca_file), safe="")
        return f"rediss://{USER}:{PASSWORD}@{self.host}:{self.port}/0?ssl_ca_certs={ca}"

    def _command(self) -> list[str]:
        if not self.ca_file.exists():
            make_certificates(self.directory, self.host)
        argv = super()._command()
        argv[argv.index("--port") + 1] = "0"  # no plain-text port at all
        return [
            *argv,
            "--tls-port", str(self.port),
            "--tls-cert-file", str(self.directory / "server.crt"),
            "--tls-key-file", str(self.directory / "server.key"),
            "--tls-ca-cert-file", str(self.ca_file),
            "--tls-auth-clients", "no",
            "--user", "default", "off",
            "--user", USER, "on", f">{PASSWORD}", f"~{KEY_PATTERN}", "+@all", "-@admin",
        ]  # fmt: skip

    def client(self, **options: Any) -> Any:
        """A synchronous redis-py client over TLS as the ACL user."""
        import redis

        return redis.Redis(
            host=self.host,
            port=self.port,
            username=USER,
            password=PASSWORD,
            ssl=True,
            ssl_ca_certs=str(self.ca_file),
            socket_timeout=1.0,
            socket_connect_timeout=1.0,
            **options,
        )

    def _is_ready(self) -> bool:
        import redis

        try:
            with self.client() as client:
                return bool(client.ping())
        except redis.RedisError:
            return False
