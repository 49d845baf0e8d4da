"""Users with text ids (UUIDs): ``Authenticator[str]`` and ``Guards[str]`` over a dict of users."""

from __future__ import annotations

import uuid
from typing import Annotated, NamedTuple

from fastapi import Depends, FastAPI, Request

from sessionauth import MemoryStore, SessionMiddleware
from sessionauth.auth import Authenticator, Guards, PasswordHasher
from sessionauth.tokens import Keyring


# --8<-- [start:text-ids]
class Member(NamedTuple):
    """A user of the application's own, named by a UUID."""

    id: str  # str(uuid.uuid4()): kept as given (1 to 255 printable characters)
    email: str
    role: str
    password_hash: str
    disabled: bool = False


class Members:
    """The application's users (a dict here; a table in real life): a UserSource[Member]."""

    def __init__(self) -> None:
        self.rows: dict[str, Member] = {}

    async def get(self, user_id: str) -> Member | None:
        """The member with this id, or None."""
        return self.rows.get(user_id)

    async def get_by_email(self, email: str) -> Member | None:
        """The member who logs in with this (normalised) email, or None."""
        return next((m for m in self.rows.values() if m.email == email), None)

    async def set_password(self, user_id: str, password_hash: str, *, replacing: str) -> bool:
        """Replace the hash ``replacing`` (and only that one); say whether it was."""
        member = self.rows.get(user_id)
        if member is None or member.password_hash != replacing:
            return False  # changed since it was read: the later change stands
        self.rows[user_id] = member._replace(password_hash=password_hash)
        return True


members = Members()
store = MemoryStore()  # any session store: principals and session indexes key by the text
auth = Authenticator(
    users=members, sessions=store, hasher=PasswordHasher(), throttle=None, user_id_type=str
)  # an Authenticator[str]: principal_changed(uid), list_sessions(uid), events carry str
guards = Guards(user_id_type=str)
api = FastAPI(exception_handlers=guards.exception_handlers)


@api.post("/login")
async def login(email: str, password: str, request: Request) -> dict[str, str]:
    """Log the member in (the answer carries their id)."""
    accepted = await auth.authenticate(email, password, address="127.0.0.1")
    await auth.login(request.scope["session"], accepted, address=None, user_agent=None)
    return {"id": str(accepted.user.id)}


@api.get("/me")
async def me(user_id: Annotated[str, Depends(guards.require_auth)]) -> dict[str, str]:
    """The signed-in member's id."""
    return {"id": user_id}  # the UUID, as str


# --8<-- [end:text-ids]


async def add_member(email: str, password: str, role: str = "user") -> str:
    """Store a member with a fresh UUID; return the id."""
    uid = str(uuid.uuid4())
    members.rows[uid] = Member(uid, email, role, await auth.hasher.hash(password))
    return uid


app = SessionMiddleware(api, store=store, keyring=Keyring(["text-ids-example-secret" * 2]))
