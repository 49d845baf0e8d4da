"""The ``sessionauth`` console script: the CLI, or one line saying which extra it needs.

``pip install sessionauth`` installs the library and this script; the CLI itself (typer) and the
reference server it runs (FastAPI, uvicorn, Jinja2, pydantic-settings, prometheus-client) come
with the ``server`` extra. Without them the script says so in one line instead of a traceback;
``sessionauth --version`` answers either way.
"""

from __future__ import annotations

import sys

__all__ = ["main"]

# The distributions of the `server` extra, by the top-level module each installs.
_SERVER_MODULES = frozenset(
    {"typer", "fastapi", "uvicorn", "jinja2", "pydantic", "pydantic_settings",
     "prometheus_client", "multipart", "python_multipart", "aiosmtplib"}
)  # fmt: skip


def main() -> None:
    """Run the CLI (:mod:`sessionauth.cli`); exit 1 with an install hint if its extra is missing."""
    if sys.argv[1:] == ["--version"]:
        # Answered without the CLI, so that it works without the server extra too.
        from sessionauth import __version__

        sys.stdout.write(f"sessionauth {__version__}\n")
        return
    try:
        from sessionauth.cli import main as cli_main
    except ModuleNotFoundError as exc:
        missing = (exc.name or "").partition(".")[0]
        if missing not in _SERVER_MODULES:
            raise
        sys.stderr.write(
            f"sessionauth: the command-line tool needs {missing!r}, which comes with the server"
            " extra: pip install 'sessionauth[server]'\n"
        )
        raise SystemExit(1) from None
    cli_main()
