"""How ids become the text sessions keep: Session.set_user takes int and str, checked."""

from __future__ import annotations

import uuid

import pytest

from sessionauth.auth.user_ids import typed_user_id
from sessionauth.errors import UserNotFound
from sessionauth.session import Session
from sessionauth.tokens import user_group
from sessionauth.user_text import MAX_TEXT_ID, MAX_USER_ID, user_id_text


def test_set_user_takes_an_int_and_keeps_its_text() -> None:
    """set_user(42) once raised AttributeError (int has no encode); now the session is "42"."""
    session = Session()
    session.set_user(42)
    assert session.user_id == "42"
    assert typed_user_id(session.user_id, int) == 42


def test_set_user_takes_a_uuid_text_and_none() -> None:
    """A UUID is kept as given; None makes the session anonymous again."""
    uid = str(uuid.uuid4())
    session = Session()
    session.set_user(uid)
    assert session.user_id == uid
    session.set_user(None)
    assert session.user_id is None


@pytest.mark.parametrize("bad", [0, -1, MAX_USER_ID + 1])
def test_ints_that_cannot_be_read_back_are_refused(bad: int) -> None:
    """An int id outside 1..2**63-1 would bind a session no int guard ever accepts."""
    with pytest.raises(ValueError, match="int user id"):
        Session().set_user(bad)


@pytest.mark.parametrize("bad", ["", "a\x00b", "tab\there", "\ud800", "x" * (MAX_TEXT_ID + 1)])
def test_texts_no_store_can_keep_are_refused_and_the_session_is_unchanged(bad: str) -> None:
    """Empty (stores read "" as no user), NUL, control characters, lone surrogates, too long."""
    session = Session()
    session.set_user("m-7f3a")
    with pytest.raises(ValueError, match="text user id"):
        session.set_user(bad)
    assert session.user_id == "m-7f3a"
    with pytest.raises(UserNotFound):
        typed_user_id(bad, str)  # nor is such a stored id read back as a user


@pytest.mark.parametrize("bad", [True, 4.0, b"42", uuid.UUID(int=1)])
def test_other_types_are_a_type_error(bad: object) -> None:
    """bool is an int to Python, not an id; a UUID object must be passed as str(uuid)."""
    with pytest.raises(TypeError, match="int or a str"):
        user_id_text(bad)  # type: ignore[arg-type]


def test_texts_with_separators_are_kept_whole_and_group_apart() -> None:
    """':' and friends are ordinary characters: each id keeps its own text and group."""
    ids = ["u:1", "u", "1", "u:1:", "{u:1}", "u:1*", "\u00e9l\u00e8ve"]
    assert [user_id_text(text) for text in ids] == ids
    assert len({user_group(text) for text in ids}) == len(ids)
