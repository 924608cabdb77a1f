"""People's passwords: argon2id hashes (argon2-cffi, RFC 9106 low-memory parameters).

Hashing is deliberately slow (tens of milliseconds, 64 MiB), so it runs in a worker thread,
never on the event loop. An unknown email is checked against a dummy hash so a wrong email
and a wrong password take the same time. Raw passwords are never logged or stored.
"""

from __future__ import annotations

import asyncio
import secrets

from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError, VerifyMismatchError

from policy_service.errors import InvalidArgument

MIN_LENGTH = 12
MAX_LENGTH = 256
_HASHER = PasswordHasher()  # argon2id, t=3, m=64 MiB, p=4
_DUMMY_HASH = _HASHER.hash(secrets.token_urlsafe(16))


def check_strength(password: str) -> str:
    """The password if acceptable; a clear error otherwise (length is what matters, NIST 800-63B)."""
    if len(password) < MIN_LENGTH:
        raise InvalidArgument(f"a password needs at least {MIN_LENGTH} characters", "WEAK_PASSWORD")
    if len(password) > MAX_LENGTH:
        raise InvalidArgument(f"a password has at most {MAX_LENGTH} characters", "BAD_PASSWORD")
    if any(ord(c) < 32 or ord(c) == 127 for c in password):
        raise InvalidArgument("a password cannot contain control characters", "BAD_PASSWORD")
    return password


def generate() -> str:
    """A password for invitations and resets: ~128 bits, URL-safe, shown once."""
    return secrets.token_urlsafe(16)


async def hash_password(password: str) -> str:
    return await asyncio.to_thread(_HASHER.hash, password)


def _verify(stored_hash: str, password: str) -> bool:
    try:
        return _HASHER.verify(stored_hash or _DUMMY_HASH, password) and bool(stored_hash)
    except (VerifyMismatchError, VerificationError, InvalidHashError):
        return False


async def verify(stored_hash: str, password: str) -> bool:
    """Whether `password` matches; an empty `stored_hash` (no such person, no password)
    costs the same time and is False."""
    if len(password) > MAX_LENGTH:
        return False
    return await asyncio.to_thread(_verify, stored_hash, password)


def needs_rehash(stored_hash: str) -> bool:
    """True when the hash was made with other parameters (rehash at the next sign-in)."""
    try:
        return _HASHER.check_needs_rehash(stored_hash)
    except InvalidHashError:
        return False
