"""MkDocs hook: render the docstrings' Sphinx roles as plain code.

The docstrings cross-reference with Sphinx roles (``:class:`~sessionauth.session.Session```),
which mkdocstrings leaves as text: ``:class:`` followed by a code span. This drops the role
and, for a ``~`` target, keeps only the last dotted part, as Sphinx displays it.
"""

from __future__ import annotations

import re
from typing import Any

_ROLE = re.compile(
    r":(?:py:)?(?:class|func|meth|mod|data|attr|exc|obj|const):<code>(~?)([^<]*)</code>"
)


def _render(match: re.Match[str]) -> str:
    target = match[2]
    return f"<code>{target.rsplit('.', 1)[-1] if match[1] else target}</code>"


def on_page_content(html: str, **kwargs: Any) -> str:
    """Rewrite every Sphinx role of a rendered page."""
    del kwargs
    return _ROLE.sub(_render, html)
