"""Decides whether a JSON key names a secret, by its words rather than its spelling.

A key is split once into lower-case words (separators `-_. `, camelCase and digits), so
`user_password`, `passwordHash`, `X-Api-Key` and `clientSecret` all reduce to words that
can be compared with the configured secret words. Matching whole words (and runs of up to
three adjacent words) instead of substrings keeps `passage`, `author`, `compass` and
`tokenizer_name` readable.
"""

from __future__ import annotations

import re

# camelCase / PascalCase / ACRONYMWord boundaries, and runs of digits.
_WORD = re.compile(r"[A-Z]+(?=[A-Z][a-z])|[A-Z]?[a-z]+|[A-Z]+|[0-9]+")

# Unambiguous spellings that are secret even when glued inside one word (`userpassword`).
GLUED_SECRETS = frozenset(
    {"password", "passwd", "passphrase", "apikey", "privatekey", "secretkey", "accesstoken", "refreshtoken",
     "clientsecret", "authtoken"}
)  # fmt: skip

# A last word that describes a secret rather than holding one (`token_type`, `password_min_length`).
DESCRIPTORS = frozenset(
    {"count", "counts", "type", "types", "kind", "limit", "limits", "length", "len", "size", "usage", "name",
     "names", "hint", "policy", "expiry", "expires", "expiration", "ttl", "url", "uri", "endpoint", "path",
     "field", "fields", "required", "enabled", "min", "max", "format", "strength", "rotation", "header", "param",
     "provider", "method", "mode", "scope", "scopes", "label", "description", "prefix", "at", "set", "updated",
     "changed", "reset", "version"}
)  # fmt: skip

_MAX_RUN = 3
_CACHE_LIMIT = 4096


def key_words(key: str) -> tuple[str, ...]:
    """`passwordHash` → ("password", "hash"); `X-API-Key` → ("x", "api", "key")."""
    return tuple(w.lower() for w in _WORD.findall(key))


def secret_word(configured: str) -> str:
    """A configured key (`api_key`, `Set-Cookie`) as the glued word it matches (`apikey`, `setcookie`)."""
    return "".join(key_words(configured))


class KeyMatcher:
    """Answers `is_secret(key)` for the configured secret words; memoises a bounded number of keys."""

    def __init__(self, configured: frozenset[str]) -> None:
        self.words = frozenset(w for w in (secret_word(k) for k in configured) if w)
        self.sorted_words = tuple(sorted(self.words))
        self.glued = tuple(w for w in self.words if w in GLUED_SECRETS)
        self._cache: dict[str, bool] = {}

    def is_secret(self, key: str) -> bool:
        known = self._cache.get(key)
        if known is None:
            known = self._classify(key)
            if len(self._cache) < _CACHE_LIMIT:
                self._cache[key] = known
        return known

    def _classify(self, key: str) -> bool:
        words = key_words(key)
        if not words:
            return False
        if len(words) > 1 and words[-1] in DESCRIPTORS:
            return False
        for start in range(len(words)):
            run = ""
            for word in words[start : start + _MAX_RUN]:
                run += word
                if run in self.words:
                    return True
        glued = "".join(words)
        return any(secret in glued for secret in self.glued)
