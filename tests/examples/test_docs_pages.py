"""The documentation's claims that can drift: settings, test files, snippets, outside links."""

from __future__ import annotations

import re

from sessionauth.server.settings import Settings
from tests.support.examples import ROOT

DOCS = ROOT / "docs"
PAGES = sorted(DOCS.rglob("*.md"))


def text_of_pages() -> str:
    return "\n".join(page.read_text() for page in PAGES)


def test_every_setting_is_in_the_deployment_table() -> None:
    """Each Settings field appears as SESSIONAUTH_<NAME> on the deployment page."""
    deployment = (DOCS / "deployment.md").read_text()
    documented = set(re.findall(r"`(SESSIONAUTH_[A-Z_]+)`", deployment))
    expected = {f"SESSIONAUTH_{name.upper()}" for name in Settings.model_fields}
    assert expected - documented == set()


def test_every_test_file_named_exists() -> None:
    """The security model and the examples name test files; each of them exists."""
    named = set(re.findall(r"tests/[\w/]+\.py", text_of_pages()))
    assert len(named) > 20
    missing = sorted(path for path in named if not (ROOT / path).is_file())
    assert missing == []


def test_every_snippet_file_is_shown_on_a_page() -> None:
    """Each file of docs/snippets/ is included by some page (no orphaned, untested-looking code)."""
    included = set(re.findall(r'--8<-- "([^":]+)', text_of_pages()))
    snippets = {str(path.relative_to(ROOT)) for path in (DOCS / "snippets").glob("*.py")}
    assert snippets
    assert snippets - included == set()


def test_no_page_points_outside_the_repository() -> None:
    """No page names a path above the repository (the README's ../shared/ links stay there)."""
    assert re.findall(r"\.\./shared|\]\(\.\./", text_of_pages()) == []
