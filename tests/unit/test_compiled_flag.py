"""``sessionauth.compiled`` says which build runs (the compiled one: ``make compiled``)."""

from __future__ import annotations

import types

import sessionauth
from sessionauth import middleware, session, tokens


def test_compiled_is_true_exactly_when_the_hot_modules_run_compiled_code() -> None:
    """mypyc turns functions into builtins: a pure build has Python functions, and says False.

    The suite runs in both builds (tests/integration/test_compiled_build.py), so each answer is
    checked against the functions of the build that runs.
    """
    functions = [middleware.find_cookie, session.Session.commit_plan, tokens.storage_id]
    python = [isinstance(function, types.FunctionType) for function in functions]
    assert python in ([True] * 3, [False] * 3), "a partial build: some hot modules are pure"
    assert sessionauth.compiled is (not python[0])
