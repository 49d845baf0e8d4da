"""docs/snippets/text_ids.py: UUID ids log in, come back as str, and principal_changed applies."""

from __future__ import annotations

import httpx

from sessionauth.auth import PasswordHasher
from tests.support.examples import load_file


async def test_uuid_members_log_in_and_the_guards_return_the_uuid() -> None:
    """The snippet's app: login, /me gives the UUID, a disable through principal_changed ends it."""
    module = load_file("docs/snippets/text_ids.py", "text_ids_snippet")
    module.auth.hasher = PasswordHasher.for_tests()
    uid = await module.add_member("mia@example.com", "correct horse battery")
    transport = httpx.ASGITransport(app=module.app)
    async with httpx.AsyncClient(transport=transport, base_url="https://t") as client:
        params = {"email": "mia@example.com", "password": "correct horse battery"}
        assert (await client.post("/login", params=params)).json() == {"id": uid}
        assert (await client.get("/me")).json() == {"id": uid}
        assert [s.handle for s in await module.auth.all_sessions(uid)] != []
        module.members.rows[uid] = module.members.rows[uid]._replace(disabled=True)
        assert await module.auth.principal_changed(uid, end_sessions=False) == 1
        assert (await client.get("/me")).status_code == 401
