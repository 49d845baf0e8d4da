"""docs/snippets/csrf_form.py: the CSRF page's form example, posted with and without its token."""

from __future__ import annotations

import re

import httpx
import pytest

from tests.support.examples import load_file


@pytest.fixture
def client(monkeypatch: pytest.MonkeyPatch) -> httpx.AsyncClient:
    monkeypatch.setenv("APP_SECRET", "csrf-form-secret-" * 3)
    app = load_file("docs/snippets/csrf_form.py", "csrf_form_snippet").app
    return httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://testserver")


async def test_form_posts_with_its_hidden_token_only(client: httpx.AsyncClient) -> None:
    """The rendered form's hidden token lets the post through; without it the post is 403."""
    async with client:
        page = await client.get("/profile")
        found = re.search(r'name="csrf_token" value="([^"]+)"', page.text)
        assert found is not None
        refused = await client.post("/profile", data={"nickname": "al"})
        assert refused.status_code == 403
        saved = await client.post("/profile", data={"nickname": "al", "csrf_token": found[1]})
        assert saved.status_code == 200
        assert saved.text == "Saved"
