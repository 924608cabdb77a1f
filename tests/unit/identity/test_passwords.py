"""argon2id password hashes: verified, salted, never the password, and weak ones refused."""

from __future__ import annotations

import pytest

from policy_service.errors import InvalidArgument
from policy_service.identity import passwords


async def test_a_hash_verifies_its_password_only() -> None:
    stored = await passwords.hash_password("a fine long password")
    assert stored.startswith("$argon2id$") and "a fine long password" not in stored
    assert await passwords.verify(stored, "a fine long password")
    assert not await passwords.verify(stored, "a fine long passwore")
    assert stored != await passwords.hash_password("a fine long password")  # salted


async def test_no_hash_never_verifies() -> None:
    assert not await passwords.verify("", "")
    assert not await passwords.verify("", "anything at all")
    assert not await passwords.verify("not a hash", "anything at all")


@pytest.mark.parametrize("weak", ["short", "x" * 11, "x" * 257, "tab\tinside the password"])
def test_weak_or_malformed_passwords_are_refused(weak: str) -> None:
    with pytest.raises(InvalidArgument):
        passwords.check_strength(weak)


def test_generated_passwords_are_strong_enough() -> None:
    assert passwords.check_strength(passwords.generate())
