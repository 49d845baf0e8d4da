"""Only one plain ``local@domain`` is an address: for accounts and for a message's recipient."""

from __future__ import annotations

import pytest

from sessionauth.errors import InvalidEmail
from sessionauth.mail import Message
from sessionauth.stores.users import normalize_email

NOT_ONE_ADDRESS = [
    "attacker@evil.com,victim@corp.com",
    "attacker@evil.com;victim@corp.com",
    "attacker@evil.com <x>@corp.com",
    "Victim <attacker@evil.com>",
    "<attacker@evil.com>",
    "attacker@evil.com (x@corp.com)",
    '"attacker@evil.com"@corp.com',
    "attacker@evil.com victim@corp.com",
    "a\tb@corp.com",
    "a\u00a0b@corp.com",
    "x@[127.0.0.1]",
    "a\\@evil.com@corp.com",
    "a@b@corp.com",
    "a@corp.com:25",
    "a@-corp.com",
    "a@corp-.com",
    "a@corp..com",
    "a@.corp.com",
    "a@corp.com.",
    "a@cor_p.com",
    "@corp.com",
    "a@",
    "x" * 65 + "@corp.com",
    "a@" + "x" * 64 + ".com",
    "a@" + ".".join(["x" * 60] * 5),
]
ADDRESSES = [
    "alice@example.com",
    "first.last+tag@sub.example.co.uk",
    "o'brien_x-y@exa-mple.com",
    "user@localhost",
    "jürgen@bücher.de",
    "x" * 64 + "@" + "y" * 63 + "." + "y" * 63 + "." + "y" * 58 + ".zz",  # 254 in all
]


@pytest.mark.parametrize("email", NOT_ONE_ADDRESS)
def test_normalize_email_refuses_anything_but_one_plain_address(email: str) -> None:
    """A list, display name, comment, quoted or literal form, or a bad domain: InvalidEmail."""
    with pytest.raises(InvalidEmail):
        normalize_email(email)


@pytest.mark.parametrize("email", NOT_ONE_ADDRESS)
def test_a_message_refuses_a_recipient_that_is_not_one_plain_address(email: str) -> None:
    """Message(to=...) checks the same rule, so no caller can put a list in To."""
    with pytest.raises(ValueError, match="recipient"):
        Message(to=email, subject="s", text="t")


@pytest.mark.parametrize("email", ADDRESSES)
def test_plain_addresses_are_accepted_everywhere(email: str) -> None:
    """Dots, plus, apostrophe, hyphen, a dotless host, Unicode and the length limits pass."""
    normalized = normalize_email(email)
    assert normalized == email.casefold()
    assert Message(to=normalized, subject="s", text="t").to == normalized
