"""Find test functions that cannot fail: no assertion and no expected exception in their body.

A test passes unless something in it fails; one that only calls code "to see it run" passes for
a broken implementation too. The suite's conftest fails every such test at setup, naming this
rule. What counts as checking something, anywhere in the test function's own body:

* an ``assert`` statement, or ``pytest.fail(...)``;
* ``pytest.raises(...)`` or ``pytest.warns(...)`` (as a context manager or a call);
* a call of a function whose name (leading underscores aside) starts with ``assert`` or
  ``expect`` (helpers such as ``assert_revoked``, Playwright's ``expect``), or ends with
  ``_fails``/``_refused``.

Helpers are trusted by name: a helper called ``assert_x`` must assert, which review checks.
"""

from __future__ import annotations

import ast
import inspect
import textwrap
from collections.abc import Callable
from typing import Any

__all__ = ["checks_something"]

_CHECKING_PYTEST_CALLS = frozenset({"raises", "warns", "fail"})


def _called_name(call: ast.Call) -> str:
    function = call.func
    if isinstance(function, ast.Attribute):
        return function.attr
    if isinstance(function, ast.Name):
        return function.id
    return ""


def _checks(node: ast.AST) -> bool:
    if isinstance(node, ast.Assert):
        return True
    if not isinstance(node, ast.Call):
        return False
    name = _called_name(node)
    function = node.func
    if (
        isinstance(function, ast.Attribute)
        and isinstance(function.value, ast.Name)
        and function.value.id == "pytest"
    ):
        return name in _CHECKING_PYTEST_CALLS
    name = name.lstrip("_")
    return name.startswith(("assert", "expect")) or name.endswith(("_fails", "_refused"))


_verdicts: dict[Any, bool] = {}


def checks_something(function: Callable[..., Any]) -> bool:
    """Whether ``function``'s own body holds an assertion or an expected exception (see module)."""
    code = getattr(function, "__code__", None)
    if code in _verdicts:
        return _verdicts[code]
    try:
        source = textwrap.dedent(inspect.getsource(function))
    except (OSError, TypeError):
        return True  # no source to read (generated tests): nothing to judge
    tree = ast.parse(source)
    verdict = any(_checks(node) for node in ast.walk(tree))
    _verdicts[code] = verdict
    return verdict
