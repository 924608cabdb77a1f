"""Value shapes: every known credential format is redacted wherever it appears, ordinary
text is left alone, and generated payloads never leak a planted secret."""

from __future__ import annotations

import json
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from policy_service.audit.redaction import MARKER, MAX_DEPTH, Redactor
from policy_service.config import DEFAULT_REDACT_KEYS

REDACTOR = Redactor(frozenset(k.strip().lower() for k in DEFAULT_REDACT_KEYS.split(",")), max_payload_bytes=1 << 20)

TOKENS = [
    "sk-" + "a1B2c3D4e5" * 3,
    "sk-proj-" + "Ab3_dE6-" * 5,
    "sk-ant-api03-" + "x" * 40,
    "ghp_" + "A1b2C3d4E5" * 4,
    "gho_" + "A1b2C3d4E5" * 4,
    "github_pat_" + "11ABCDEFG0" * 5,
    "xoxb-1234567890-abcdefghij",
    "xoxp-1234567890-abcdefghij",
    "AKIAIOSFODNN7EXAMPLE",
    "AIza" + "SyA1b2C3d4E5f6G7h8I9j0K1l2M3n4O5p6Q",
    "glpat-" + "xY9_zW8-vU7" * 2,
    "eyJhbGciOiJIUzI1NiJ9.eyJzdWIiOiIxMjM0NSJ9.c2lnbmF0dXJlc2lnbmF0dXJl",
    "Bearer " + "abcDEF123456ghiJKL789",
    "mmcp_" + "Q" * 54,
]


@pytest.mark.parametrize("token", TOKENS)
@pytest.mark.parametrize("template", ["{}", "use {} here", "x={}", '{{"k": "{}"}}', "(token '{}')"])
def test_known_token_formats_are_redacted_anywhere(token: str, template: str) -> None:
    redacted, paths = REDACTOR.redact({"text": template.format(token)})
    assert token not in redacted["text"] and MARKER in redacted["text"]
    assert paths and all(p.startswith("$.text") for p in paths)


PLAIN_TEXT = [
    "The passage: read it twice.",
    "author: Ann Smith, compass=north, tokenizer_name=bpe",
    "see https://example.com/docs?page=2&sort=asc for details",
    "mail ann@example.com or visit https://ann@example.com/profile",
    "max_tokens=512 temperature=0.2 token_count: 30",
    "ratio 3:2 at 10:45, key=value, primary_key: id",
    "bearer bonds are a risk",
    "task-2026 skill-tree ghost_town",
    '{"title": "Q3", "pages": [1, 2]',
]


@pytest.mark.parametrize("text", PLAIN_TEXT)
def test_ordinary_text_is_kept(text: str) -> None:
    assert REDACTOR.redact({"text": text}) == ({"text": text}, [])


def test_url_keeps_scheme_user_and_host() -> None:
    redacted, _ = REDACTOR.redact({"dsn": "see mysql://root:p@ss@w0rd@db.local:3306/app now"})
    assert redacted["dsn"] == f"see mysql://root:{MARKER}@db.local:3306/app now"


def test_pem_block_is_replaced_whole() -> None:
    text = "a\n-----BEGIN EC PRIVATE KEY-----\nMHcCAQEEIBkg\n-----END EC PRIVATE KEY-----\nb"
    redacted, _ = REDACTOR.redact({"text": text})
    assert redacted["text"].startswith("a\n-----BEGIN") and redacted["text"].endswith("-----\nb")
    assert "MHcCAQEEIBkg" not in redacted["text"]


def test_structure_deeper_than_the_limit_is_stored_as_the_marker() -> None:
    value: Any = {"password": "hunter2"}
    for _ in range(MAX_DEPTH + 5):
        value = [value]
    text, paths = REDACTOR.to_stored_text(value, "request")
    assert "hunter2" not in text and MARKER in text and len(paths) == 1


def test_deeply_nested_json_text_does_not_raise() -> None:
    text = "[" * 100_000 + "]" * 100_000
    stored, paths = REDACTOR.redact_json_text(text, "response")
    assert stored == text and paths == []


def test_booleans_and_empty_values_under_secret_keys_stay_readable() -> None:
    value = {"password": "", "token": None, "auth": True, "secret": 0}
    assert REDACTOR.redact(value) == ({"password": "", "token": None, "auth": True, "secret": MARKER}, ["$.secret"])


PLANTED = "mmcp_" + "Z" * 40
SAFE_KEYS = st.sampled_from(["title", "body", "items", "meta", "page", "author", "passage", "count", "url"])
SAFE_TEXT = st.text(alphabet="abcdefghij klmnop,.!?", max_size=40)
JSON_VALUES = st.recursive(
    st.none() | st.booleans() | st.integers() | SAFE_TEXT,
    lambda children: st.lists(children, max_size=4) | st.dictionaries(SAFE_KEYS, children, max_size=4),
    max_leaves=20,
)


def plant(value: Any, secret: str, choice: int) -> Any:
    """`value` with `secret` placed in one of several shapes at its top level."""
    shapes: list[Any] = [
        {"password": secret},
        f"text {secret} text",
        json.dumps({"nested": {"clientSecret": secret}}),
        f"postgresql://u:{secret}@h/db",
        {"content": [{"type": "text", "text": json.dumps({"apiKey": secret})}]},
    ]
    return {"payload": value, "planted": shapes[choice % len(shapes)]}


@given(value=JSON_VALUES, choice=st.integers(min_value=0, max_value=4))
def test_a_planted_secret_never_reaches_storage(value: Any, choice: int) -> None:
    text, paths = REDACTOR.to_stored_text(plant(value, PLANTED, choice), "request")
    assert "ZZZZZZZZ" not in text and paths


@given(value=JSON_VALUES)
def test_clean_payloads_are_stored_unchanged(value: Any) -> None:
    assert REDACTOR.redact(value) == (value, [])


@given(value=JSON_VALUES, choice=st.integers(min_value=0, max_value=4))
def test_redaction_is_idempotent(value: Any, choice: int) -> None:
    once, _ = REDACTOR.redact(plant(value, PLANTED, choice))
    assert REDACTOR.redact(once)[0] == once


@given(text=st.text(max_size=300))
def test_any_text_is_redacted_without_error(text: str) -> None:
    stored, _ = REDACTOR.redact_json_text(text, "response")
    assert isinstance(stored, str)
