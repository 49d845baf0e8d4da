"""The commit plan: what a session needs from the store when its response starts, for every case."""

from __future__ import annotations

import dataclasses
import hashlib
import hmac
from collections.abc import Callable
from typing import Any

import msgspec
import pytest

from sessionauth.commit_plan import (
    FORGET,
    NOTHING,
    Adopt,
    CommitPlan,
    Create,
    Delete,
    Fate,
    Lineage,
    Touch,
    Update,
    plan_commit,
)
from sessionauth.policy import TimeoutPolicy
from sessionauth.principal import Principal
from sessionauth.record import CSRF_SEED, REMEMBER, RecordUpdate, SessionRecord
from sessionauth.session import Session
from sessionauth.tokens import csrf_seed, new_token, storage_id

POLICY = TimeoutPolicy(
    idle_timeout=1000, absolute_timeout=10_000, renewal_interval=5000, touch_interval=60
)
NOW = 1_000_000.0
CREATED = NOW - 500  # the stored session began 500 s ago...
SEEN = NOW - 30  # ...was last written 30 s ago (a touch is not due)...
TOKEN = new_token("1")
SID = storage_id(TOKEN)  # ...and is stored under this id
META = {"ip": "192.0.2.1"}
# What set_user stores: the facts given, and that the login did not ask to be remembered.
SIGNED_IN = {**META, REMEMBER: False}
FORGETFUL = {REMEMBER: False}
EPOCH = "E0"  # ...stamped with its user's principal epoch
RESTAMPED = Principal(epoch="E2", role="user")
SEED_LENGTH = 22  # 128 random bits, base64url
LOGIN_TOKEN = new_token("7")
LOGIN_SID = storage_id(LOGIN_TOKEN)
ENDS = Lineage(SID, "1", CREATED)  # the stored login a logout (or a new login) ends

Action = Callable[[Session], object]


def new() -> Session:
    """A session for a request that brought no (live) cookie."""
    return Session()


def stored(
    data: dict[str, Any] | None = None,
    *,
    user: str | None = "1",
    seen: float = SEEN,
    issued: float = CREATED,
    created: float = CREATED,
    meta: dict[str, Any] | None = None,
) -> Callable[[], Session]:
    """A factory of sessions loaded from the store (``meta``: else ``META``)."""

    def make() -> Session:
        return Session(
            dict(data if data is not None else {"a": 1}),
            token=TOKEN,
            handle=SID,
            user_id=user,
            created=created,
            seen=seen,
            issued=issued,
            meta=dict(META if meta is None else meta),
            epoch=EPOCH if user is not None else None,
            principal=Principal(epoch=EPOCH, role="user") if user is not None else None,
            policy=POLICY,
        )

    return make


def put(key: str, value: Any) -> Action:
    return lambda session: session.__setitem__(key, value)


def drop(key: str) -> Action:
    return lambda session: session.__delitem__(key)


def call(name: str, *args: Any, **kwargs: Any) -> Action:
    return lambda session: getattr(session, name)(*args, **kwargs)


def login() -> Action:
    """What Authenticator.login does once the store took the login's record."""

    def act(session: Session) -> None:
        rec = session.login_record("7", token=LOGIN_TOKEN, meta=dict(META), epoch="E1", now=NOW)
        session.adopt(LOGIN_TOKEN, LOGIN_SID, rec, Principal(epoch="E1", role="user"))

    return act


def record(
    data: dict[str, Any],
    *,
    created: float = NOW,
    user: str | None = None,
    meta: dict[str, Any] | None = None,
    epoch: str | None = None,
) -> SessionRecord:
    """The record a Create at NOW stores."""
    expires = min(NOW + POLICY.idle_timeout, created + POLICY.absolute_timeout)
    return SessionRecord(
        data=data,
        created=created,
        seen=NOW,
        issued=NOW,
        expires=expires,
        user_id=user,
        meta=meta or {},
        epoch=epoch,
    )


def create(
    rec: SessionRecord, replaces: str | None = None, *, continues: bool = False, forward: float = 0
) -> Create:
    """An expected Create; its random token and id are compared apart."""
    return Create("*", "*", rec, replaces, continues=continues, forward=forward)


def update(values: dict[str, Any], deleted: tuple[str, ...] = ()) -> Update:
    expires = min(NOW + POLICY.idle_timeout, CREATED + POLICY.absolute_timeout)
    return Update(SID, RecordUpdate(set=values, delete=deleted, seen=NOW, expires=expires))


CASES = [
    # -- no stored session --------------------------------------------------------------
    pytest.param(new, (), False, NOTHING, id="anonymous untouched"),
    pytest.param(new, (call("get", "a"),), False, NOTHING, id="anonymous read"),
    pytest.param(new, (), True, FORGET, id="stale cookie, nothing to store"),
    pytest.param(new, (put("a", 1),), False, create(record({"a": 1})), id="anonymous written"),
    pytest.param(
        new, (put("a", 1),), True, create(record({"a": 1})), id="stale cookie, then written"
    ),
    pytest.param(
        new, (put("a", 1), drop("a")), False, NOTHING, id="anonymous written then emptied"
    ),
    pytest.param(new, (call("keep"),), False, create(record({})), id="anonymous kept empty"),
    pytest.param(
        new,
        (call("bound_secret", b"k" * 32),),
        False,
        create(record({})),
        id="anonymous handed a bound token",
    ),
    pytest.param(
        new,
        (call("set_user", "7", meta=META),),
        False,
        create(record({}, user="7", meta=SIGNED_IN)),
        id="login without a session",
    ),
    pytest.param(new, (call("destroy"),), False, NOTHING, id="destroyed, nothing stored"),
    pytest.param(new, (call("destroy"),), True, FORGET, id="destroyed, stale cookie"),
    # -- a stored session ---------------------------------------------------------------
    pytest.param(stored(), (), False, NOTHING, id="stored untouched, no touch due"),
    pytest.param(stored(), (call("get", "a"),), False, NOTHING, id="stored read"),
    pytest.param(stored(seen=NOW - 59), (), False, NOTHING, id="touch one second before it is due"),
    pytest.param(
        stored(seen=NOW - 60),
        (),
        False,
        Touch(SID, NOW, NOW + POLICY.idle_timeout),
        id="touch due",
    ),
    pytest.param(
        stored(seen=NOW - 60, created=NOW - 9500, issued=NOW - 10),
        (),
        False,
        Touch(SID, NOW, NOW + 500),
        id="touch capped by the absolute timeout",
    ),
    pytest.param(stored(), (put("b", 2),), False, update({"b": 2}), id="logged-in written"),
    pytest.param(
        stored(), (put("a", 5), put("a", 6)), False, update({"a": 6}), id="last write wins"
    ),
    pytest.param(stored(), (drop("a"),), False, update({}, ("a",)), id="logged-in key deleted"),
    pytest.param(
        stored(), (call("clear"),), False, Delete(SID, ends=ENDS), id="logged-in cleared: logout"
    ),
    pytest.param(
        stored(user=None), (put("b", 1), call("clear")), False, Delete(SID), id="anonymous cleared"
    ),
    pytest.param(
        stored(),
        (drop("a"),),
        False,
        update({}, ("a",)),
        id="logged-in emptied key by key stays",
    ),
    pytest.param(
        stored(), (call("mark_changed", "a"),), False, update({"a": 1}), id="mutated in place"
    ),
    pytest.param(stored(user=None), (drop("a"),), False, Delete(SID), id="anonymous emptied"),
    pytest.param(
        stored(user=None), (call("clear"),), False, Delete(SID), id="anonymous cleared, untouched"
    ),
    pytest.param(
        stored(issued=NOW - 5000),
        (),
        False,
        create(
            record({"a": 1}, created=CREATED, user="1", meta=META, epoch=EPOCH),
            SID,
            continues=True,
            forward=POLICY.renewal_grace,
        ),
        id="renewal due keeps the epoch, leaves a forward",
    ),
    pytest.param(
        stored(issued=NOW - 4999), (), False, NOTHING, id="renewal one second before it is due"
    ),
    pytest.param(
        stored(),
        (call("regenerate"),),
        False,
        create(
            record({"a": 1}, created=CREATED, user="1", meta=META, epoch=EPOCH), SID, continues=True
        ),
        id="regenerated keeps the epoch",
    ),
    pytest.param(
        stored(),
        (call("restamp", RESTAMPED), call("regenerate")),
        False,
        create(
            record({"a": 1}, created=CREATED, user="1", meta=META, epoch="E2"), SID, continues=True
        ),
        id="regenerated after a rotation that kept it: the new epoch",
    ),
    pytest.param(
        stored(user=None),
        (login(),),
        False,
        Adopt(LOGIN_SID, LOGIN_TOKEN, NOW, SID, None),
        id="a login stored by the Authenticator: cookie, old record deleted",
    ),
    pytest.param(
        new,
        (login(),),
        False,
        Adopt(LOGIN_SID, LOGIN_TOKEN, NOW, None, None),
        id="a login without a previous session",
    ),
    pytest.param(
        stored(user=None),
        (login(), put("b", 2)),
        False,
        Adopt(
            LOGIN_SID,
            LOGIN_TOKEN,
            NOW,
            SID,
            RecordUpdate(set={"b": 2}, delete=(), seen=NOW, expires=NOW + POLICY.idle_timeout),
        ),
        id="a login, then a value written: the update rides along",
    ),
    pytest.param(
        stored(user=None),
        (login(), call("destroy")),
        False,
        Delete(LOGIN_SID, SID),
        id="a login, then destroyed: both records go",
    ),
    pytest.param(
        stored(user=None),
        (login(), call("regenerate")),
        False,
        dataclasses.replace(
            create(
                record({"a": 1}, user="7", meta=META, epoch="E1"),
                LOGIN_SID,
                continues=True,
            ),
            superseded=SID,
        ),
        id="a login, then regenerated: the login's epoch, both old records go",
    ),
    pytest.param(
        stored({}, user=None),
        (call("regenerate"),),
        False,
        Delete(SID),
        id="empty session regenerated",
    ),
    pytest.param(
        stored(user=None),
        (call("set_user", "2", meta=META),),
        False,
        create(record({"a": 1}, user="2", meta=SIGNED_IN), SID),
        id="login in a stored session restarts its lifetime",
    ),
    pytest.param(
        stored(),
        (call("set_user", "2"), call("regenerate")),
        False,
        dataclasses.replace(create(record({"a": 1}, user="2", meta=FORGETFUL), SID), ends=ENDS),
        id="a login regenerated again is still a login, without an epoch",
    ),
    pytest.param(stored(), (call("destroy"),), False, Delete(SID, ends=ENDS), id="destroyed"),
    pytest.param(
        stored(),
        (call("destroy"), put("x", 1)),
        False,
        Delete(SID, ends=ENDS),
        id="destroyed then written",
    ),
    pytest.param(
        stored(),
        (call("destroy"), call("set_user", "3")),
        False,
        dataclasses.replace(create(record({}, user="3", meta=FORGETFUL), SID), ends=ENDS),
        id="destroyed then logged in again",
    ),
    pytest.param(
        stored(),
        (call("destroy"), call("regenerate"), put("x", 1)),
        False,
        dataclasses.replace(
            create(record({"x": 1}, created=CREATED), SID, continues=True), ends=ENDS
        ),
        id="destroyed then regenerated and written: a new anonymous session",
    ),
    pytest.param(
        stored(),
        (login(),),
        False,
        Adopt(LOGIN_SID, LOGIN_TOKEN, NOW, SID, None, ends=ENDS),
        id="a login over a stored login: the loaded login ends, by its lineage",
    ),
    pytest.param(
        stored(),
        (call("regenerate"), call("destroy")),
        False,
        Delete(SID, ends=ENDS),
        id="regenerated then destroyed: the loaded login ends, by its lineage",
    ),
    pytest.param(
        stored(user=None),
        (call("set_user", "2"), call("destroy")),
        False,
        Delete(SID),
        id="a login of this request destroyed: no login was loaded, no lineage",
    ),
]


def _comparable(plan: CommitPlan) -> CommitPlan:
    """The plan with its random parts set aside: the token, its id, a fresh CSRF seed.

    Where seeds are drawn and kept is tested on its own (test_session_csrf_seed.py).
    """
    if isinstance(plan, Create):
        assert plan.sid == storage_id(plan.token)
        meta = dict(plan.record.meta)
        if meta.get(CSRF_SEED) is not None:
            assert len(meta.pop(CSRF_SEED)) == SEED_LENGTH
        record = msgspec.structs.replace(plan.record, meta=meta)
        return dataclasses.replace(plan, sid="*", token="*", record=record)
    return plan


@pytest.mark.parametrize(("build", "actions", "stale", "expected"), CASES)
def test_each_case_has_its_plan(
    build: Callable[[], Session], actions: tuple[Action, ...], stale: bool, expected: CommitPlan
) -> None:
    """A session after the request's actions plans exactly the expected store operation."""
    session = build()
    for action in actions:
        action(session)
    assert _comparable(session.commit_plan(POLICY, NOW, stale_cookie=stale)) == expected


def test_nothing_to_do_is_the_shared_plan() -> None:
    """The most common plan is one shared value: deciding it allocates no plan."""
    assert stored()().commit_plan(POLICY, NOW) is NOTHING
    assert new().commit_plan(POLICY, NOW) is NOTHING


def bound_to(plan: CommitPlan, key: bytes) -> bytes:
    """The CSRF secret of the record a plan creates: an HMAC of the seed it stores."""
    assert isinstance(plan, Create)
    seed = plan.record.meta[CSRF_SEED]
    return hmac.new(key, seed.encode(), hashlib.sha256).digest()


def test_a_created_record_carries_the_seed_csrf_tokens_were_bound_to() -> None:
    """After a login, the stored seed is the one the response's CSRF token is bound to."""
    session = stored()()
    key = b"k" * 32
    before = session.bound_secret(key)
    session.set_user("2")
    secret = session.bound_secret(key)
    assert secret != before  # a login draws a new seed: tokens from before it die
    plan = session.commit_plan(POLICY, NOW)
    assert isinstance(plan, Create)
    assert plan.token != TOKEN
    assert plan.token.startswith(new_token("2")[:11])  # grouped under the new user
    assert bound_to(plan, key) == secret


def test_a_kept_new_session_is_stored_with_the_seed_it_handed_out() -> None:
    """An anonymous session that handed out a bound secret is created with that same seed."""
    session = new()
    key = b"k" * 32
    secret = session.bound_secret(key)
    assert bound_to(session.commit_plan(POLICY, NOW), key) == secret


def test_a_renewal_keeps_the_seed_and_a_regeneration_draws_a_new_one() -> None:
    """A page rendered before a renewal posts after it; one rendered before a regeneration not."""
    key = b"k" * 32
    seeded = {**META, CSRF_SEED: "s" * 22}
    renewing = stored(issued=NOW - 5000, meta=seeded)()
    secret = renewing.bound_secret(key)
    assert bound_to(renewing.commit_plan(POLICY, NOW), key) == secret
    regenerating = stored(meta=seeded)()
    regenerating.regenerate()
    plan = regenerating.commit_plan(POLICY, NOW)
    assert bound_to(plan, key) == regenerating.bound_secret(key) != secret
    assert seeded[CSRF_SEED] == "s" * 22  # the loaded record's meta is not written into


def test_a_record_stored_before_seeds_stays_bound_to_its_token() -> None:
    """A loaded record without a seed: its CSRF tokens were bound to the session token."""
    key = b"k" * 32
    session = stored()()
    assert session.bound_secret(key) == hmac.new(key, TOKEN.encode(), hashlib.sha256).digest()


def test_renewal_mints_the_new_token_with_the_injected_minter() -> None:
    """A renewal due asks ``mint`` for the user's new token and replaces the stored record."""
    minted = new_token("1")
    plan = plan_commit(
        Fate.KEEP,
        False,
        SID,
        TOKEN,
        "1",
        {"a": 1},
        set(),
        set(),
        CREATED,
        SEEN,
        NOW - 5000,
        {},
        now=NOW,
        policy=POLICY,
        stale_cookie=False,
        mint=lambda user: minted if user == "1" else "",
    )
    assert plan == Create(
        storage_id(minted),
        minted,
        # A record stored before seeds gets the new token's: from now on, renewals keep it.
        record({"a": 1}, created=CREATED, user="1", meta={CSRF_SEED: csrf_seed(minted)}),
        SID,
        continues=True,
        forward=POLICY.renewal_grace,
    )


def test_a_renewal_without_grace_leaves_no_forward() -> None:
    """``renewal_grace=0``: the old token dies with the renewal, as a regeneration's does."""
    no_grace = TimeoutPolicy(
        idle_timeout=1000, absolute_timeout=10_000, renewal_interval=5000, renewal_grace=0
    )
    plan = stored(issued=NOW - 5000)().commit_plan(no_grace, NOW)
    assert isinstance(plan, Create)
    assert plan.continues
    assert plan.forward == 0


def test_a_created_record_does_not_share_the_sessions_dicts() -> None:
    """The record holds copies: the memory store keeps it, the session may still change."""
    session = new()
    session["a"] = {"nested": 1}
    plan = session.commit_plan(POLICY, NOW)
    assert isinstance(plan, Create)
    session["b"] = 2
    assert plan.record.data == {"a": {"nested": 1}}


def test_without_renewal_interval_an_old_token_is_never_rotated() -> None:
    """With no renewal interval configured, no age of token plans a rotation."""
    policy = TimeoutPolicy(idle_timeout=1000, absolute_timeout=10_000, touch_interval=60)
    session = stored(issued=NOW - 9_999)()
    assert session.commit_plan(policy, NOW) is NOTHING


def test_a_session_reached_through_a_forward_is_never_renewed() -> None:
    """A replaced cookie's request: no renewal, whatever is due (its holder gets no token)."""
    session = stored(issued=NOW - 5000)()
    session.mark_forwarded()
    assert session.commit_plan(POLICY, NOW) is NOTHING
    session["a"] = 2
    assert session.commit_plan(POLICY, NOW) == update({"a": 2})


def test_a_regeneration_through_a_forward_ends_the_session() -> None:
    """Fail closed: the session ends, with its lineage, rather than give the cookie a token."""
    session = stored()()
    session.mark_forwarded()
    session.regenerate()
    assert session.commit_plan(POLICY, NOW) == Delete(SID, None, Lineage(SID, "1", CREATED))
