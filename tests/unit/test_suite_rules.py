"""The suite's own rules: a test asserts something (tests/support/asserting) and says what."""

from __future__ import annotations

import ast
from pathlib import Path
from typing import Any

import pytest

from tests.support.asserting import checks_something


def _no_check() -> None:
    value = 1 + 1
    print(value)


def _asserts(page: Any) -> None:
    assert page.ok


def _expects_an_exception() -> None:
    with pytest.raises(ZeroDivisionError):
        print(1 / 0)


def _uses_an_assert_helper(page: Any) -> None:
    _assert_page_fits(page)


def _uses_expect(page: Any) -> None:
    expect(page).to_have_title("x")


def _assert_page_fits(page: Any) -> None:
    assert page


def expect(page: Any) -> Any:
    return page


def test_a_function_without_assertion_or_expected_exception_checks_nothing() -> None:
    """A body that only runs code is judged as checking nothing."""
    assert checks_something(_no_check) is False


@pytest.mark.parametrize(
    "function", [_asserts, _expects_an_exception, _uses_an_assert_helper, _uses_expect]
)
def test_asserts_expected_exceptions_and_checking_helpers_count(function: Any) -> None:
    """assert, pytest.raises, an assert_* helper and expect(...) each count as a check."""
    assert checks_something(function) is True


def test_every_test_function_has_a_docstring() -> None:
    """Each test function in the suite opens with a docstring naming the behaviour it pins."""
    tests = Path(__file__).resolve().parents[1]
    missing = [
        f"{path.relative_to(tests)}:{node.lineno} {node.name}"
        for path in sorted(tests.rglob("test_*.py"))
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8")))
        if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef)
        and node.name.startswith("test_")
        and not ast.get_docstring(node)
    ]
    assert missing == []
