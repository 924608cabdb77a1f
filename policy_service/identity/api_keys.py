"""API key format: ``mmcp_`` + 16-char public id + 32-char secret + 6-char checksum.

All base62, so a double-click selects the whole key. The CRC32 checksum lets secret
scanners recognise a real key without a database. The id is looked up; the whole token's
SHA-256 is what is stored (the secret has ~190 bits of entropy, so a slow hash adds nothing).
"""

from __future__ import annotations

import hashlib
import hmac
import re
import secrets
import zlib
from dataclasses import dataclass

PREFIX = "mmcp_"
_ALPHABET = "0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz"
_ID_LEN = 16
_SECRET_LEN = 32
_CHECK_LEN = 6
TOKEN_LEN = len(PREFIX) + _ID_LEN + _SECRET_LEN + _CHECK_LEN
# One C-level scan per token (checked on every call, for the caller and its service identity).
_BASE62 = re.compile(r"[0-9A-Za-z]*", re.ASCII)


def _random_base62(length: int) -> str:
    return "".join(secrets.choice(_ALPHABET) for _ in range(length))


# Every two-digit base62 number, by value: the checksum (checked for every caller key and
# service credential, on every call) is three lookups instead of a loop over its digits.
_PAIRS = tuple(high + low for high in _ALPHABET for low in _ALPHABET)
_PAIR = len(_PAIRS)  # 62**2


def _checksum(body: str) -> str:
    """The CRC32 of `body` in six base62 digits (a CRC32 is below 62**6)."""
    crc = zlib.crc32(body.encode())
    return _PAIRS[crc // _PAIR**2] + _PAIRS[crc // _PAIR % _PAIR] + _PAIRS[crc % _PAIR]


@dataclass(frozen=True, slots=True)
class NewKey:
    key_id: str
    token: str
    token_hash: str


def generate(prefix: str = PREFIX) -> NewKey:
    """A new key; service credentials use the same shape with their own prefix."""
    key_id = _random_base62(_ID_LEN)
    body = prefix + key_id + _random_base62(_SECRET_LEN)
    token = body + _checksum(body)
    return NewKey(key_id=key_id, token=token, token_hash=hash_token(token))


def hash_token(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


def looks_like_api_key(token: str) -> bool:
    return token.startswith(PREFIX)


def parse_key_id(token: str, prefix: str = PREFIX) -> str | None:
    """The public id of a well-formed key, or None (wrong length, alphabet or checksum)."""
    if len(token) != TOKEN_LEN - len(PREFIX) + len(prefix) or not token.startswith(prefix):
        return None
    body, check = token[:-_CHECK_LEN], token[-_CHECK_LEN:]
    if not _BASE62.fullmatch(token, len(prefix)):
        return None
    if not hmac.compare_digest(_checksum(body), check):
        return None
    return body[len(prefix) : len(prefix) + _ID_LEN]


def matches(token: str, stored_hash: str) -> bool:
    return hmac.compare_digest(hash_token(token), stored_hash)
