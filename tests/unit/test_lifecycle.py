"""AccountLifecycle over a real SQLite user store, memory sessions and tokens, letters collected.

The postbox here keeps the letters it is handed (the integration tests send them through a
real SMTP server); the clock is a FakeClock, so expiry is tested without waiting.
"""

from __future__ import annotations

import asyncio
import re
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import get_args

import bcrypt
import pytest

from sessionauth.auth.authenticator import Authenticator
from sessionauth.auth.letters import Letter, LetterKind
from sessionauth.auth.lifecycle import AccountLifecycle
from sessionauth.auth.passwords import PasswordHasher
from sessionauth.auth.single_use import LIFETIMES, RESET_PASSWORD, VERIFY_EMAIL, SingleUseTokens
from sessionauth.auth.throttle import LoginThrottle
from sessionauth.errors import (
    AlreadyVerified,
    EmailNotVerified,
    InvalidCredentials,
    InvalidEmail,
    InvalidToken,
    NotAuthenticated,
    PasswordPolicyError,
    TooManyAttempts,
)
from sessionauth.mail import MailTemplates
from sessionauth.session import Session
from sessionauth.stores.memory import MemoryCounter, MemoryStore
from sessionauth.stores.tokens import MemoryTokenStore
from sessionauth.stores.users import User
from tests.support.backends import user_store
from tests.support.clock import FakeClock

PASSWORD = "correct horse battery"
NEW_PASSWORD = "another fine passphrase"
ADDRESS = "198.51.100.7"
BASE = "https://auth.example.com"


class CountingHasher(PasswordHasher):
    """The test hasher, counting the password hashes it computes."""

    hashes = 0

    async def hash(self, password: str) -> str:
        self.hashes += 1
        return await super().hash(password)


@dataclass
class World:
    """The lifecycle, its authenticator, and every letter posted so far."""

    flows: AccountLifecycle
    auth: Authenticator
    clock: FakeClock
    hasher: CountingHasher
    letters: list[Letter] = field(default_factory=list)

    async def posted(self) -> list[Letter]:
        """The letters posted once every background delivery is done."""
        await self.flows.drain()
        return self.letters

    async def user(self, email: str, *, verified: bool = True) -> User:
        users = self.auth.users
        return await users.create(email, await self.hasher.hash(PASSWORD), verified=verified)

    async def sign_in(self, email: str, password: str = PASSWORD) -> Session:
        session = Session()
        accepted = await self.auth.authenticate(email, password, address=ADDRESS)
        await self.auth.login(session, accepted, address=ADDRESS, user_agent="test")
        return session


def token_of(letter: Letter) -> str:
    match = re.search(r"token=([A-Za-z0-9_-]+)$", letter.context["link"])
    assert match is not None, letter
    return match.group(1)


async def _world(tmp_path: Path, *, throttle: bool = False) -> AsyncIterator[World]:
    clock = FakeClock()
    users = user_store(f"sqlite:///{tmp_path / 'users.db'}", clock=clock)
    hasher = CountingHasher.for_tests()
    assert isinstance(hasher, CountingHasher)
    sessions = MemoryStore(clock=clock)
    auth = Authenticator(users=users, sessions=sessions, hasher=hasher, throttle=None, clock=clock)
    letters: list[Letter] = []

    async def postbox(letter: Letter) -> None:
        letters.append(letter)

    flows = AccountLifecycle(
        auth=auth,
        tokens=SingleUseTokens(
            tokens=MemoryTokenStore(clock), users=users, principals=sessions, clock=clock
        ),
        postbox=postbox,
        base_url=BASE + "/",
        throttle=LoginThrottle(
            MemoryCounter(clock), clock=clock, scope="mail:", max_per_account=3, max_per_address=5
        )
        if throttle
        else None,
    )
    try:
        yield World(flows, auth, clock, hasher, letters)
    finally:
        await flows.drain()
        await users.aclose()


@pytest.fixture
async def world(tmp_path: Path) -> AsyncIterator[World]:
    async for made in _world(tmp_path):
        yield made


@pytest.fixture
async def throttled(tmp_path: Path) -> AsyncIterator[World]:
    async for made in _world(tmp_path, throttle=True):
        yield made


# -- sign-up ----------------------------------------------------------------------------------


async def test_a_sign_up_makes_an_unverified_account_and_mails_a_verification_link(
    world: World,
) -> None:
    """New address: an unverified account, no session, a link that verifies it once."""
    await world.flows.sign_up(" New@Example.com", PASSWORD, address=ADDRESS)
    user = await world.auth.users.get_by_email("new@example.com")
    assert user is not None
    assert not user.email_verified
    assert user.role == "user"
    assert await world.auth.count_sessions(user.id) == 0
    [letter] = await world.posted()
    assert (letter.kind, letter.to) == ("verify_email", "new@example.com")
    assert letter.context["link"].startswith(f"{BASE}/verify?token=")
    assert letter.lifetime == LIFETIMES["verify-email"]

    verified = await world.flows.verify_email(token_of(letter))
    assert verified.id == user.id
    assert verified.email_verified
    with pytest.raises(InvalidToken):
        await world.flows.verify_email(token_of(letter))


async def test_a_sign_up_for_an_existing_address_changes_nothing_and_says_so_by_mail(
    world: World,
) -> None:
    """Existing, verified address: the account and its password stay; the mail says it exists."""
    before = await world.user("taken@example.com")
    await world.flows.sign_up("taken@example.com", "an attacker's password", address=ADDRESS)
    after = await world.auth.users.get_by_email("taken@example.com")
    assert after == before
    [letter] = await world.posted()
    assert (letter.kind, letter.to) == ("account_exists", "taken@example.com")
    assert "token=" not in " ".join(letter.context.values())
    assert letter.context["reset_link"] == f"{BASE}/password/forgot"


async def test_sign_ups_of_new_and_existing_addresses_hash_once_and_mail_afterwards(
    world: World,
) -> None:
    """Uniform work: one password hash either way, and the letter leaves after the answer."""
    await world.user("taken@example.com")
    release = asyncio.Event()
    seen: list[str] = []

    async def slow_postbox(letter: Letter) -> None:
        await release.wait()
        seen.append(letter.kind)

    world.flows.courier._postbox = slow_postbox
    try:
        for email in ("fresh@example.com", "taken@example.com"):
            before = world.hasher.hashes
            # Returns while the mail is still undelivered: the answer never waits for it.
            await asyncio.wait_for(world.flows.sign_up(email, PASSWORD, address=ADDRESS), 10)
            assert world.hasher.hashes == before + 1
        assert seen == []
    finally:
        release.set()  # a failure above must not leave the fixture's drain waiting forever
    await world.flows.drain()
    assert sorted(seen) == ["account_exists", "verify_email"]


async def test_a_sign_up_for_an_unconfirmed_account_mails_a_link_to_choose_the_password(
    world: World,
) -> None:
    """Pre-registration: the owner of the address gets a reset link, never a verify link."""
    await world.flows.sign_up("victim@example.com", "the squatter's password", address=ADDRESS)
    await world.posted()
    world.letters.clear()
    await world.flows.sign_up("victim@example.com", PASSWORD, address=ADDRESS)
    [letter] = await world.posted()
    assert letter.kind == "finish_signup"
    assert letter.context["link"].startswith(f"{BASE}/password/reset?token=")
    with pytest.raises(InvalidToken):
        await world.flows.verify_email(token_of(letter))
    await world.flows.reset_password(token_of(letter), NEW_PASSWORD)
    user = await world.auth.users.get_by_email("victim@example.com")
    assert user is not None
    assert user.email_verified
    with pytest.raises(InvalidCredentials):
        await world.auth.authenticate("victim@example.com", "the squatter's password", address="x")


async def test_a_sign_up_refuses_bad_input_before_any_work(world: World) -> None:
    """A malformed address or a short password: an error, no account, no hash, no mail."""
    with pytest.raises(InvalidEmail):
        await world.flows.sign_up("not an address", PASSWORD, address=ADDRESS)
    with pytest.raises(PasswordPolicyError):
        await world.flows.sign_up("ok@example.com", "short", address=ADDRESS)
    assert world.hasher.hashes == 0
    assert await world.auth.users.list() == []
    assert await world.posted() == []


async def test_concurrent_sign_ups_of_one_address_make_one_account(world: World) -> None:
    """Two sign-ups racing: one account; the other is told by mail that it exists."""
    await asyncio.gather(
        *(world.flows.sign_up("race@example.com", PASSWORD, address=ADDRESS) for _ in range(2))
    )
    assert [u.email for u in await world.auth.users.list()] == ["race@example.com"]
    kinds = sorted(letter.kind for letter in await world.posted())
    assert kinds == ["finish_signup", "verify_email"]


# -- throttling -------------------------------------------------------------------------------


async def test_mail_is_throttled_per_recipient_whoever_asks(throttled: World) -> None:
    """Three mails to one address an hour, from any client; then 429 for it, not for others."""
    for n in range(3):
        await throttled.flows.forgot_password("victim@example.com", address=f"192.0.2.{n}")
    with pytest.raises(TooManyAttempts):
        await throttled.flows.sign_up("victim@example.com", PASSWORD, address="192.0.2.9")
    await throttled.flows.forgot_password("other@example.com", address="192.0.2.9")
    throttled.clock.advance(15 * 60 + 1)
    await throttled.flows.forgot_password("victim@example.com", address="192.0.2.9")


async def test_mail_is_throttled_per_client_address(throttled: World) -> None:
    """One client cannot mail any number of addresses."""
    for n in range(5):
        await throttled.flows.forgot_password(f"user{n}@example.com", address=ADDRESS)
    with pytest.raises(TooManyAttempts):
        await throttled.flows.forgot_password("user9@example.com", address=ADDRESS)


async def test_mail_throttling_never_touches_login_attempts(tmp_path: Path) -> None:
    """The mail throttle's keys have their own scope: sign-ups never lock anyone's login out."""
    counter = MemoryCounter()
    logins = LoginThrottle(counter, max_per_account=3)
    mails = LoginThrottle(counter, scope="mail:", max_per_account=3)
    for _ in range(3):
        await mails.reserve("alice@example.com", ADDRESS)
    attempt = await logins.reserve("alice@example.com", ADDRESS)
    assert attempt.account[0].startswith("a:")
    with pytest.raises(TooManyAttempts):
        await mails.reserve("alice@example.com", ADDRESS)


# -- verification -----------------------------------------------------------------------------


async def test_verification_is_requested_by_the_signed_in_user_only_while_unverified(
    world: World,
) -> None:
    """A new link for an unverified account; 409 once verified; 401 without a user."""
    user = await world.user("me@example.com", verified=False)
    session = Session(user_id=str(user.id))
    await world.flows.request_verification(session, address=ADDRESS)
    [letter] = await world.posted()
    await world.flows.verify_email(token_of(letter), session=session)
    with pytest.raises(AlreadyVerified):
        await world.flows.request_verification(session, address=ADDRESS)
    with pytest.raises(NotAuthenticated):
        await world.flows.request_verification(Session(), address=ADDRESS)


async def test_an_address_changed_between_consume_and_mark_is_not_verified(
    world: World, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A link for old@, taken just before the account moved to new@, verifies nothing."""
    user = await world.user("old@example.com", verified=False)
    await world.flows.request_verification(Session(user_id=str(user.id)), address=ADDRESS)
    [letter] = await world.posted()
    consume = world.flows.tokens.consume

    async def consume_then_change(*args: object, **kwargs: object) -> object:
        claim = await consume(*args, **kwargs)  # type: ignore[arg-type]
        await world.auth.users.set_email(user.id, "new@example.com", verified=False)
        return claim

    monkeypatch.setattr(world.flows.tokens, "consume", consume_then_change)
    with pytest.raises(InvalidToken):
        await world.flows.verify_email(token_of(letter))
    now = await world.auth.users.get(user.id)
    assert now is not None
    assert (now.email, now.email_verified) == ("new@example.com", False)


async def test_a_signed_in_user_cannot_use_another_users_link(world: World) -> None:
    """Bob's session presenting Alice's link: refused, and Alice's link still works for her."""
    alice = await world.user("alice@example.com", verified=False)
    bob = await world.user("bob@example.com", verified=False)
    await world.flows.request_verification(Session(user_id=str(alice.id)), address=ADDRESS)
    [letter] = await world.posted()
    with pytest.raises(InvalidToken):
        await world.flows.verify_email(token_of(letter), session=Session(user_id=str(bob.id)))
    verified = await world.flows.verify_email(token_of(letter))
    assert verified.id == alice.id


@pytest.mark.parametrize("token", ["", "x" * 43, "a" * 44, "é" * 43, "A" * 42 + "="])
async def test_malformed_tokens_are_invalid_links(world: World, token: str) -> None:
    """Anything that is not a token of ours: InvalidToken, for both kinds of link."""
    with pytest.raises(InvalidToken):
        await world.flows.verify_email(token)
    with pytest.raises(InvalidToken):
        await world.flows.reset_password(token, NEW_PASSWORD)


async def test_links_are_bound_to_their_purpose_and_expire(world: World) -> None:
    """A reset link cannot verify, a verify link cannot reset; either dies after its lifetime."""
    user = await world.user("me@example.com", verified=False)
    await world.flows.forgot_password("me@example.com", address=ADDRESS)
    await world.flows.request_verification(Session(user_id=str(user.id)), address=ADDRESS)
    reset, verify = await world.posted()
    with pytest.raises(InvalidToken):
        await world.flows.verify_email(token_of(reset))
    with pytest.raises(InvalidToken):
        await world.flows.reset_password(token_of(verify), NEW_PASSWORD)
    world.clock.advance(LIFETIMES[RESET_PASSWORD] + 1)
    with pytest.raises(InvalidToken):
        await world.flows.reset_password(token_of(reset), NEW_PASSWORD)
    await world.flows.verify_email(token_of(verify))  # 24 hours: still alive


# -- email change ----------------------------------------------------------------------------


async def test_an_email_change_happens_only_when_the_new_address_confirms(world: World) -> None:
    """Password checked; the link goes to the new address; the old one is told afterwards."""
    user = await world.user("old@example.com")
    session = Session(user_id=str(user.id))
    with pytest.raises(InvalidCredentials):
        await world.flows.request_email_change(session, "new@example.com", "wrong", address="x")
    await world.flows.request_email_change(session, "New@Example.com", PASSWORD, address="x")
    [link] = await world.posted()
    assert (link.kind, link.to, link.context["new_email"]) == (
        "change_email",
        "new@example.com",
        "new@example.com",
    )
    assert (await world.auth.get_user(user.id)).email == "old@example.com"
    changed = await world.flows.verify_email(token_of(link))
    assert (changed.email, changed.email_verified) == ("new@example.com", True)
    notice = (await world.posted())[-1]
    assert (notice.kind, notice.to, notice.context["new_email"]) == (
        "email_changed",
        "old@example.com",
        "new@example.com",
    )


async def _change_email(world: World, session: Session, new_email: str) -> None:
    await world.flows.request_email_change(session, new_email, PASSWORD, address="x")
    link = [letter for letter in await world.posted() if letter.kind == "change_email"][-1]
    await world.flows.verify_email(token_of(link), session=session)


async def test_an_address_changed_away_and_back_revives_no_link(world: World) -> None:
    """A reset link mailed to A dies when the address goes A -> B -> A (attacker review F3)."""
    await world.user("a@example.com")
    session = await world.sign_in("a@example.com")
    await world.flows.forgot_password("a@example.com", address=ADDRESS)
    [reset] = await world.posted()
    await _change_email(world, session, "b@example.com")
    await _change_email(world, session, "a@example.com")
    with pytest.raises(InvalidToken):
        await world.flows.reset_password(token_of(reset), NEW_PASSWORD)


async def test_a_confirmed_email_change_ends_the_other_sessions_and_keeps_this_one(
    world: World,
) -> None:
    """A new address is a new credential: a new epoch; the session that confirmed it stays."""
    user = await world.user("a@example.com")
    here, elsewhere = await world.sign_in("a@example.com"), await world.sign_in("a@example.com")
    await _change_email(world, here, "b@example.com")
    listed = await world.auth.list_sessions(user.id)
    assert [info.handle for info in listed.sessions] == [here.handle]
    assert elsewhere.handle != here.handle


async def test_a_refused_unverified_login_keeps_the_verification_link(world: World) -> None:
    """A login refused as unverified does not rehash: the link mailed stays usable (F4)."""
    legacy = bcrypt.hashpw(PASSWORD.encode(), bcrypt.gensalt(rounds=4)).decode()
    user = await world.auth.users.create("old@example.com", legacy, verified=False)
    link = await world.flows.tokens.issue(user, VERIFY_EMAIL)
    world.auth.require_verified = True
    with pytest.raises(EmailNotVerified):
        await world.auth.authenticate("old@example.com", PASSWORD, address=ADDRESS)
    assert (await world.flows.verify_email(link)).email_verified


async def test_an_email_change_to_a_taken_address_answers_the_same(world: World) -> None:
    """The taken address gets a note, no link; the requester learns nothing."""
    user = await world.user("me@example.com")
    await world.user("taken@example.com")
    session = Session(user_id=str(user.id))
    await world.flows.request_email_change(session, "taken@example.com", PASSWORD, address="x")
    [letter] = await world.posted()
    assert (letter.kind, letter.to) == ("account_exists", "taken@example.com")
    with pytest.raises(InvalidEmail):
        await world.flows.request_email_change(session, "ME@example.com", PASSWORD, address="x")


# -- forgotten passwords ---------------------------------------------------------------------


async def test_forgot_password_mails_only_enabled_accounts(world: World) -> None:
    """Existing: a reset link; unknown or disabled: nothing, and the same return."""
    await world.user("me@example.com")
    disabled = await world.user("off@example.com")
    await world.auth.set_disabled(disabled.id, True)
    for email in ("me@example.com", "nobody@example.com", "off@example.com"):
        await world.flows.forgot_password(email, address=ADDRESS)
    [letter] = await world.posted()
    assert (letter.kind, letter.to) == ("reset_password", "me@example.com")
    assert letter.context["link"].startswith(f"{BASE}/password/reset?token=")


async def test_a_reset_sets_the_password_and_ends_every_session(world: World) -> None:
    """Every session ends, nobody is signed in, the old password is dead, the new one works."""
    user = await world.user("me@example.com")
    for _ in range(2):
        await world.sign_in("me@example.com")
    assert await world.auth.count_sessions(user.id) == 2
    await world.flows.forgot_password("me@example.com", address=ADDRESS)
    [letter] = await world.posted()
    with pytest.raises(PasswordPolicyError):
        await world.flows.reset_password(token_of(letter), "short")
    assert await world.flows.reset_password(token_of(letter), NEW_PASSWORD) == 2
    assert await world.auth.count_sessions(user.id) == 0
    with pytest.raises(InvalidCredentials):
        await world.auth.authenticate("me@example.com", PASSWORD, address=ADDRESS)
    await world.auth.authenticate("me@example.com", NEW_PASSWORD, address=ADDRESS)


async def test_a_password_change_kills_reset_links_issued_before(world: World) -> None:
    """Any password change (here an administrator's) kills earlier reset links."""
    user = await world.user("me@example.com")
    await world.flows.forgot_password("me@example.com", address=ADDRESS)
    [letter] = await world.posted()
    await world.auth.set_password(user.id, "set by an administrator")
    with pytest.raises(InvalidToken):
        await world.flows.reset_password(token_of(letter), NEW_PASSWORD)


async def test_two_concurrent_uses_of_one_reset_link_one_wins(world: World) -> None:
    """asyncio.gather of two resets with one token: exactly one sets its password."""
    await world.user("me@example.com")
    await world.flows.forgot_password("me@example.com", address=ADDRESS)
    [letter] = await world.posted()
    token = token_of(letter)
    results = await asyncio.gather(
        world.flows.reset_password(token, "first new password"),
        world.flows.reset_password(token, "second new password"),
        return_exceptions=True,
    )
    assert sum(isinstance(r, int) for r in results) == 1
    assert sum(isinstance(r, InvalidToken) for r in results) == 1
    winner = "first new password" if isinstance(results[0], int) else "second new password"
    await world.auth.authenticate("me@example.com", winner, address=ADDRESS)


@pytest.mark.parametrize("kind", get_args(LetterKind))
def test_every_kind_of_letter_has_templates_that_render(kind: str) -> None:
    """Each letter the flows send renders with the default mail templates and its context."""
    context = {
        "link": f"{BASE}/verify?token=abc",
        "login_link": f"{BASE}/login",
        "reset_link": f"{BASE}/password/forgot",
        "new_email": "new@example.com",
        "expires_in": "24 hours",
    }
    message = MailTemplates().render(kind, to="me@example.com", **context)
    assert message.subject
    assert message.html is not None
    shown = [value for value in context.values() if value in message.text]
    assert shown, message.text
