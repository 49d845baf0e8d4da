"""docs/own-users.md as a reader builds from it: snippets complete, claims true, one error shape."""

from __future__ import annotations

import inspect
import re
import sys
from types import ModuleType

import pytest

from sessionauth.auth import Authenticator, normalize_email
from tests.support.examples import ROOT

DOCS = ROOT / "docs"
PAGE = (DOCS / "own-users.md").read_text()
EXAMPLE = "examples/fastapi_sqlalchemy/main.py"
INCLUDE = re.compile(r'^--8<-- "([^":]+):(\w+)"$', re.MULTILINE)


def region(path: str, name: str) -> str:
    """The lines between ``--8<-- [start:name]`` and ``[end:name]``, as the docs build shows."""
    text = (ROOT / path).read_text()
    match = re.search(
        rf"^# --8<-- \[start:{name}\]\n(.*?)^# --8<-- \[end:{name}\]$", text, re.S | re.M
    )
    assert match, f"{path} has no region {name}"
    return match.group(1)


def test_the_pages_snippets_in_order_are_a_whole_program(monkeypatch: pytest.MonkeyPatch) -> None:
    """Copying the page's code blocks, in order, into a file gives an app that runs.

    (It did not: no imports, DATABASE and STORE never defined.)
    """
    included = INCLUDE.findall(PAGE)
    assert included[0] == (EXAMPLE, "imports")
    source = "\n".join(region(path, name) for path, name in included)
    monkeypatch.setenv("APP_SECRET", "own-users-page-secret-" * 2)
    module = ModuleType("own_users_page")
    monkeypatch.setitem(sys.modules, module.__name__, module)  # SQLAlchemy resolves names there
    exec(compile(source, "own-users.md", "exec"), module.__dict__)  # noqa: S102 - our own docs
    paths = {route.path for route in module.app.routes}
    assert {"/login", "/me", "/admin", "/logout", "/users/{user_id}"} <= paths


def test_the_install_line_has_every_package_the_imports_need() -> None:
    """The driver of the default DATABASE URL and SQLAlchemy's asyncio extra are installed."""
    install = re.search(r"^pip install .*$", PAGE, re.MULTILINE)
    assert install, "own-users.md has no install line"
    for package in ("'sessionauth[redis]'", "fastapi", "'sqlalchemy[asyncio]'", "aiosqlite"):
        assert package in install.group(0).split(), package
    assert "sqlite+aiosqlite://" in region(EXAMPLE, "imports")


def test_normalize_email_is_documented_as_it_behaves() -> None:
    """The page names the import and the form; the example it gives is what the function does."""
    assert "from sessionauth.auth import normalize_email" in PAGE
    example = re.search(r'`"(\s*[^"`]+)"` becomes\s+`"([^"]+)"`', PAGE)
    assert example, "own-users.md shows no normalize_email example"
    assert normalize_email(example.group(1)) == example.group(2)


def test_principal_changed_says_what_happens_to_the_sessions() -> None:
    """end_sessions is required (no silent default), and the page shows both calls."""
    parameter = inspect.signature(Authenticator.principal_changed).parameters["end_sessions"]
    assert parameter.kind is inspect.Parameter.KEYWORD_ONLY
    assert parameter.default is inspect.Parameter.empty
    assert "principal_changed(user_id, end_sessions=False)" in PAGE
    assert "principal_changed(user_id, end_sessions=True)" in PAGE
    admin = region(EXAMPLE, "admin")
    assert "end_sessions=False" in admin
    assert "end_sessions=True" in admin


def test_the_page_tells_of_the_login_redirect() -> None:
    """Browsers are sent to login_url (default /login): the page says an app needs GET /login."""
    assert "`GET /login`" in PAGE
    assert 'login_url="/signin"' in PAGE
    assert '@app.get("/login"' in region(EXAMPLE, "routes")


@pytest.mark.parametrize("path", [EXAMPLE, "docs/snippets/quickstart_fastapi.py"])
def test_documented_fastapi_code_answers_one_error_shape(path: str) -> None:
    """No HTTPException raised in code the docs show, FastAPI's answered: one {"error"} shape."""
    code = (ROOT / path).read_text()
    assert "HTTPException(" not in code
    assert "HTTPException: http_error" in code


def test_the_examples_page_does_not_contradict_itself() -> None:
    """The stale "Not yet" section on the SQLAlchemy example is gone; the example is described."""
    examples = (DOCS / "examples.md").read_text()
    assert "Not yet" not in examples
    assert "not built yet" not in examples
    assert examples.count("## FastAPI with your own SQLAlchemy users") == 1
