"""The Session mapping's change tracking and lifecycle flags."""

from __future__ import annotations

import pytest

from sessionauth.commit_plan import NOTHING, Create, Delete, Update
from sessionauth.policy import TimeoutPolicy
from sessionauth.principal import Principal, new_epoch
from sessionauth.session import Session

POLICY = TimeoutPolicy()
NOW = 1_000_000.0


def written(session: Session) -> tuple[dict[str, object], tuple[str, ...]]:
    """The keys a stored session's commit writes, and the ones it deletes."""
    plan = session.commit_plan(POLICY, NOW)
    assert isinstance(plan, Update)
    return dict(plan.update.set), plan.update.delete


def test_new_session_is_empty_new_and_untouched() -> None:
    """A fresh session has no handle, no values, no user and records no access."""
    session = Session()
    assert session.is_new
    assert len(session) == 0
    assert session.user_id is None
    assert not session.will_be_stored
    assert not session.modified
    assert session.commit_plan(POLICY, NOW) is NOTHING


def test_a_fresh_session_records_no_access() -> None:
    """Building a session is not reading it: no access is recorded."""
    assert not Session().accessed


def test_reads_mark_access_but_not_modification() -> None:
    """Reading marks the session accessed (no caching) without marking it changed."""
    session = Session({"a": 1}, handle="h")
    assert session.get("a") == 1
    assert session.accessed
    assert not session.modified


def test_assignments_and_deletions_are_tracked_per_key() -> None:
    """The commit writes assigned keys with values and deletes deleted ones, last action winning."""
    session = Session({"a": 1, "b": 2, "c": 3}, handle="h", user_id="1")
    session["a"] = 10
    del session["b"]
    session["b"] = 20  # re-assigned after deletion: a change, not a deletion
    del session["c"]
    changed, deleted = written(session)
    assert changed == {"a": 10, "b": 20}
    assert deleted == ("c",)


def test_clear_deletes_every_key() -> None:
    """clear() on an anonymous session turns every stored key into a deletion."""
    session = Session({"a": 1, "b": 2}, handle="h")
    session.clear()
    assert len(session) == 0
    session["c"] = 3
    changed, deleted = written(session)
    assert changed == {"c": 3}
    assert sorted(deleted) == ["a", "b"]


def test_clear_on_a_logged_in_session_ends_the_login() -> None:
    """clear() on a logged-in session is a logout: no user, no values, the record deleted."""
    principal = Principal(epoch=new_epoch(), role="admin")
    session = Session({"a": 1}, handle="h", user_id="1", epoch=principal.epoch, principal=principal)
    session.clear()
    assert (session.user_id, session.principal, session.epoch, len(session)) == (
        None,
        None,
        None,
        0,
    )
    assert session.commit_plan(TimeoutPolicy(), 1000.0) == Delete("h")


def test_in_place_mutation_needs_mark_changed() -> None:
    """Mutating a stored list is invisible until mark_changed names the key."""
    session = Session({"cart": [1]}, handle="h")
    session["cart"].append(2)
    assert not session.modified
    session.mark_changed("cart")
    assert session.modified
    assert written(session) == ({"cart": [1, 2]}, ())
    with pytest.raises(KeyError):
        session.mark_changed("missing")


def test_non_string_keys_are_refused() -> None:
    """Keys must be strings, so every store can hold them."""
    with pytest.raises(TypeError):
        Session()[1] = "x"  # type: ignore[index]


def test_regenerate_switches_token_now_and_keeps_values() -> None:
    """regenerate() replaces the token immediately; values stay."""
    key = b"k" * 32
    session = Session({"a": 1}, token="t" * 43, handle="h")
    before = session.bound_secret(key)
    session.regenerate()
    assert session.bound_secret(key) != before
    assert session.data() == {"a": 1}
    plan = session.commit_plan(POLICY, NOW)
    assert isinstance(plan, Create)
    assert plan.replaces == "h"
    assert plan.record.data == {"a": 1}


def test_set_user_regenerates_and_restarts_the_lifetime() -> None:
    """Binding a user always regenerates and restarts the absolute timeout."""
    session = Session(token="t" * 43, handle="h", created=NOW - 5)
    session.set_user("42", meta={"ip": "127.0.0.1"})
    assert session.user_id == "42"
    assert session.meta == {"ip": "127.0.0.1", "remember": False}
    plan = session.commit_plan(POLICY, NOW)
    assert isinstance(plan, Create)
    assert plan.replaces == "h"
    assert plan.record.created == NOW
    assert plan.record.user_id == "42"


def test_destroy_forgets_everything() -> None:
    """destroy() clears values, user and login facts, cancels regeneration and keep()."""
    session = Session({"a": 1}, handle="h", user_id="1", meta={"ip": "127.0.0.1"})
    session.regenerate()
    session.keep()
    session.destroy()
    assert session.commit_plan(POLICY, NOW) == Delete("h")
    assert len(session) == 0
    assert session.user_id is None
    assert session.meta == {}


def test_bound_secret_depends_on_the_token_and_keeps_the_session() -> None:
    """bound_secret differs per token and per key, and marks an empty session worth storing."""
    one, two = Session(token="a" * 43), Session(token="b" * 43)
    key = b"k" * 32
    assert one.bound_secret(key) != two.bound_secret(key)
    assert one.bound_secret(key) != one.bound_secret(b"j" * 32)
    assert one.will_be_stored
    assert isinstance(one.commit_plan(POLICY, NOW), Create)
