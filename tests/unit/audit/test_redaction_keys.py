"""Key names: secret in any spelling, and ordinary words that merely contain a secret
word's letters stay readable. Table cases plus generated spellings in both directions."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from policy_service.audit.redaction_keys import KeyMatcher, key_words
from policy_service.config import DEFAULT_REDACT_KEYS

MATCHER = KeyMatcher(frozenset(k.strip().lower() for k in DEFAULT_REDACT_KEYS.split(",")))

SECRET_KEYS = [
    "password", "user_password", "db_password", "passwordHash", "password_hash", "pwd", "pass", "x-api-key",
    "X-API-KEY", "apiKey", "APIKey", "accessToken", "access_token", "clientSecret", "privateKey", "private.key",
    "secret_key", "auth", "Authorization", "Proxy-Authorization", "set-cookie", "Cookie", "session_id",
    "refreshToken", "id_token", "aws_secret_access_key", "AWS_ACCESS_KEY_ID", "userpassword", "mypasswd",
    "passphrase", "credentials", "jwt", "oauth_token", "github_token", "SIGNING_KEY", "auth token",
]  # fmt: skip

PLAIN_KEYS = [
    "passage", "passages", "author", "authors", "authority", "compass", "bypass", "passenger", "tokenizer_name",
    "tokenizer", "max_tokens", "token_count", "token_type", "tokenType", "password_min_length", "secret_name",
    "auth_type", "auth_url", "keyboard", "key", "keys", "monkey", "primary_key", "sort_key", "secretary",
    "sessions_count", "description", "title", "name", "url", "passthrough", "is_authenticated", "authentic",
    "cookbook", "api_version", "token_expires_at",
]  # fmt: skip


@pytest.mark.parametrize("key", SECRET_KEYS)
def test_secret_keys_match(key: str) -> None:
    assert MATCHER.is_secret(key)


@pytest.mark.parametrize("key", PLAIN_KEYS)
def test_plain_keys_do_not_match(key: str) -> None:
    assert not MATCHER.is_secret(key)


@pytest.mark.parametrize(
    ("key", "words"),
    [
        ("passwordHash", ("password", "hash")),
        ("X-API-Key", ("x", "api", "key")),
        ("APIKey", ("api", "key")),
        ("aws.secret access-key_ID", ("aws", "secret", "access", "key", "id")),
        ("oauth2Token", ("oauth", "2", "token")),
    ],
)
def test_key_words_split_case_separators_and_camel_case(key: str, words: tuple[str, ...]) -> None:
    assert key_words(key) == words


SECRET_PHRASES = [["password"], ["pwd"], ["secret"], ["token"], ["api", "key"], ["private", "key"], ["auth"]]
PLAIN_WORDS = ["user", "db", "main", "new", "old", "github", "aws", "my", "primary", "backup"]
PLAIN_TAILS = ["value", "hash", "data", "id", "b64"]


def spell(words: list[str], style: str) -> str:
    if style == "camel":
        return words[0] + "".join(w.title() for w in words[1:])
    if style == "upper":
        return "_".join(words).upper()
    return style.join(words)


STYLES = st.sampled_from(["_", "-", ".", " ", "camel", "upper"])


@given(
    before=st.lists(st.sampled_from(PLAIN_WORDS), max_size=2),
    phrase=st.sampled_from(SECRET_PHRASES),
    after=st.lists(st.sampled_from(PLAIN_TAILS), max_size=1),
    style=STYLES,
)
def test_any_spelling_around_a_secret_word_matches(
    before: list[str], phrase: list[str], after: list[str], style: str
) -> None:
    assert MATCHER.is_secret(spell([*before, *phrase, *after], style))


LOOKALIKES = ["passage", "author", "compass", "tokenizer", "keyboard", "monkey", "bypass", "authority", "passenger"]


@given(
    words=st.lists(st.sampled_from(LOOKALIKES + PLAIN_WORDS + ["name", "count", "key"]), min_size=1, max_size=3),
    style=STYLES,
)
def test_words_that_only_contain_secret_letters_do_not_match(words: list[str], style: str) -> None:
    assert not MATCHER.is_secret(spell(words, style))


@given(
    phrase=st.sampled_from(SECRET_PHRASES),
    descriptor=st.sampled_from(["type", "count", "length", "name", "url", "expires_at"]),
    style=STYLES,
)
def test_a_word_that_describes_a_secret_does_not_match(phrase: list[str], descriptor: str, style: str) -> None:
    assert not MATCHER.is_secret(spell([*phrase, *descriptor.split("_")], style))


def test_configured_keys_are_normalised_like_key_names() -> None:
    matcher = KeyMatcher(frozenset({"X-Tenant-PIN"}))
    assert matcher.is_secret("xTenantPin") and matcher.is_secret("x_tenant_pin") and not matcher.is_secret("tenant")
