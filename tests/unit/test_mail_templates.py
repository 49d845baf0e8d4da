"""Account mail templates: every kind renders, HTML is escaped, a directory overrides."""

from __future__ import annotations

from pathlib import Path

import jinja2
import pytest

from sessionauth.mail import MailTemplates, Message
from sessionauth.mail.templates import KINDS, duration

CONTEXT = {
    "link": "https://app.example/verify?token=TOKEN",
    "expires_in": "30 minutes",
    "login_link": "https://app.example/login",
    "reset_link": "https://app.example/password/forgot",
}


@pytest.mark.parametrize("kind", KINDS)
def test_every_kind_renders_text_and_html(kind: str) -> None:
    """Each default mail has a one-line subject and both bodies, naming the recipient."""
    message = MailTemplates(app_name="Example").render(kind, to="a@example.com", **CONTEXT)
    assert "\n" not in message.subject
    assert "Example" in message.subject
    assert "a@example.com" in message.text
    assert message.html is not None
    assert "a@example.com" in message.html
    if kind != "account_exists":
        assert CONTEXT["link"] in message.text
        assert "30 minutes" in message.text


def test_html_is_escaped_and_text_is_not() -> None:
    """An address with markup is escaped in the HTML body only."""
    # '<' cannot be in an address; '&' and "'" can, and HTML-escaping must still apply.
    message = MailTemplates().render("verify_email", to="a&b'c@example.com", **CONTEXT)
    assert message.html is not None
    assert "a&amp;b&#39;c@example.com" in message.html
    assert "a&b'c@example.com" not in message.html
    assert "a&b'c@example.com" in message.text


def test_missing_variable_is_an_error() -> None:
    """A template variable left out fails loudly rather than mailing a blank link."""
    with pytest.raises(jinja2.UndefinedError):
        MailTemplates().render("reset_password", to="a@example.com")


def test_directory_overrides_one_file(tmp_path: Path) -> None:
    """A file in the templates directory replaces the default; the others stay."""
    (tmp_path / "reset_password.subject.txt").write_text("Custom {{ app_name }} reset\n")
    message = MailTemplates(directory=tmp_path).render(
        "reset_password", to="a@example.com", **CONTEXT
    )
    assert message.subject == "Custom sessionauth reset"
    assert CONTEXT["link"] in message.text


def test_loader_overrides() -> None:
    """A Jinja2 loader argument is searched before the defaults."""
    loader = jinja2.DictLoader({"verify_email.txt": "Go: {{ link }}"})
    message = MailTemplates(loader=loader).render("verify_email", to="a@example.com", **CONTEXT)
    assert message.text == f"Go: {CONTEXT['link']}"


def test_subject_cannot_inject_headers() -> None:
    """A line break in a subject or recipient is refused (header injection)."""
    with pytest.raises(ValueError, match="recipient"):
        Message(to="a@example.com\r\nBcc: b@example.com", subject="s", text="t")
    with pytest.raises(ValueError, match="one line"):
        Message(to="a@example.com", subject="s\nBcc: b@example.com", text="t")


@pytest.mark.parametrize(
    ("seconds", "text"),
    [
        (60, "1 minute"),
        (1800, "30 minutes"),
        (3600, "1 hour"),
        (86400, "24 hours"),
        (5400, "90 minutes"),
    ],
)
def test_duration(seconds: float, text: str) -> None:
    """Lifetimes read naturally in a mail."""
    assert duration(seconds) == text
