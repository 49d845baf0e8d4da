"""The API reference of the documentation site: every public name has its entry."""

from __future__ import annotations

import importlib
import inspect
import os
import re
import subprocess
import sys
from pathlib import Path

import griffe
import pytest

from tests.support.examples import ROOT
from tests.unit.test_public_api import LAZY_STORES, PACKAGES

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def anchors(tmp_path_factory: pytest.TempPathFactory) -> set[str]:
    """The ids of every object mkdocstrings rendered on the reference pages (a fresh build)."""
    site = tmp_path_factory.mktemp("site")
    built = subprocess.run(  # noqa: S603 - mkdocs from this interpreter, fixed arguments
        [sys.executable, "-m", "mkdocs", "build", "--strict", "--site-dir", str(site)],
        cwd=ROOT,
        env={**os.environ, "NO_MKDOCS_2_WARNING": "1"},
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )
    assert built.returncode == 0, built.stderr
    pages = "".join(path.read_text() for path in Path(site, "reference").glob("*.html"))
    return set(re.findall(r'id="(sessionauth\.[\w.]+)"', pages))


def test_every_public_name_has_an_entry_in_the_api_reference(anchors: set[str]) -> None:
    """Each name of each public package's __all__ (and the lazy stores) is rendered somewhere."""
    loaded = griffe.load("sessionauth", resolve_aliases=True, resolve_external=False)
    missing = []
    for package in PACKAGES:
        module = importlib.import_module(package)
        names = [*module.__all__, *(LAZY_STORES if package == "sessionauth.stores" else ())]
        prefix = package.removeprefix("sessionauth").removeprefix(".")
        for name in names:
            value = getattr(module, name)
            qualname = getattr(value, "__qualname__", "<locals>")
            # A class or a function is rendered where it is defined; a type alias such as
            # Callable[[Letter], ...] forwards __qualname__ to its origin, so it is data too.
            if (inspect.isclass(value) or inspect.isroutine(value)) and "<locals>" not in qualname:
                defined = f"{value.__module__}.{qualname}"
            else:  # data, or a function a factory made: griffe knows where it is assigned
                defined = loaded[f"{prefix}.{name}" if prefix else name].canonical_path
            # Rendered where it is defined, or under any public package that exports it.
            if {defined, *(f"{public}.{name}" for public in PACKAGES)}.isdisjoint(anchors):
                missing.append(f"{package}.{name}")
    assert missing == []
