"""Build the optional compiled hot path: sessionauth's hot modules as mypyc extension modules.

``make compiled`` runs this. It copies ``src/sessionauth`` to ``build/compiled/sessionauth``
and compiles :data:`MODULES` there with mypyc: each ``.so`` sits next to its ``.py``, which
Python's import system passes over for the extension. Put ``build/compiled`` first on
``PYTHONPATH`` to run the compiled build; ``sessionauth.compiled`` then says ``True``.

Out of ``src/`` on purpose: an extension next to an edited ``.py`` would keep running the old
code without a word, in the editable install every test and ``make run`` use. The default
install and the wheel stay pure Python. ``tests/integration/test_compiled_build.py`` runs the
unit tests, the memory and SQLite store contracts and the hot path budget against this build,
and skips (saying why) when there is none or it is older than the sources.
"""

from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
SOURCE = ROOT / "src" / "sessionauth"
OUT = ROOT / "build" / "compiled"

MODULES = (
    "hmac_sha256",
    "tokens",
    "record",
    "policy",
    "commit_plan",
    "session",
    "middleware",
    "backends/binding",
    "backends/redis/keys",
    "backends/redis/codec",
    "backends/redis/reads",
)
"""The modules compiled: what every authenticated request runs (benchmarks/README.md, issue 13).

The middleware's path, and the Redis store's read: its key layout, its record codec and binding
check, and the read pipeline (7,000 instructions fewer per request on Redis than the middleware's
modules alone, ``benchmarks/in_process.py`` under callgrind). Compiled in one group, so calls
between them (the middleware into the session, the session into the commit plan) are direct C
calls rather than Python calls. ``backends/redis/sessions`` stays Python: the store class is the
one applications subclass and tests wrap.
"""


def build() -> None:
    """Copy the package to :data:`OUT` and compile :data:`MODULES` in place there."""
    shutil.rmtree(OUT, ignore_errors=True)
    shutil.copytree(SOURCE, OUT / "sessionauth", ignore=shutil.ignore_patterns("__pycache__"))
    paths = [f"sessionauth/{name}.py" for name in MODULES]
    # mypyc's command line builds the extensions in place (next to each .py); its C sources
    # and objects go to OUT/build, removed afterwards.
    subprocess.run([sys.executable, "-m", "mypyc", *paths], cwd=OUT, check=True)  # noqa: S603
    shutil.rmtree(OUT / "build")


if __name__ == "__main__":
    build()
