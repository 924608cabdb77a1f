"""Regression cases for secret shapes the redactor used to miss (issue 10). Uses only the
Redactor's public API and the default keys, so each case also runs against older code."""

from __future__ import annotations

import json
from typing import Any

import pytest

from policy_service.audit.redaction import MARKER, Redactor
from policy_service.config import DEFAULT_REDACT_KEYS

REDACTOR = Redactor(frozenset(k.strip().lower() for k in DEFAULT_REDACT_KEYS.split(",")), max_payload_bytes=65_536)
SECRET = "Zq8!unguessable-Value_42"

MISSED_KEYS = [
    "user_password", "db_password", "passwordHash", "pwd", "pass", "x-api-key", "X-Api-Key", "accessToken",
    "clientSecret", "privateKey", "secret_key", "auth", "DB_PWD", "apiKey", "userpassword", "aws.secret.access.key",
]  # fmt: skip


@pytest.mark.parametrize("key", MISSED_KEYS)
def test_secret_key_spellings_are_redacted(key: str) -> None:
    redacted, paths = REDACTOR.redact({"arguments": {key: SECRET, "name": "ann"}}, "request")
    assert redacted == {"arguments": {key: MARKER, "name": "ann"}}
    assert paths == [f"request.arguments.{key}"]


PEM = (
    "-----BEGIN RSA PRIVATE KEY-----\nMIIEowIBAAKCAQEAu1SU1LfVLPHCozMxH2Mo4lgOEePzNm0tRgeLezV6ffAt0gun\n"
    "VTLw7onLRnrq0/IzW7yWR7QkrmBL7jTKEn5u+qKhbwKfBstIs+bMY2Zkp18gnTxK\n-----END RSA PRIVATE KEY-----"
)

TEXT_CASES: list[tuple[str, str, str]] = [
    # (text, what must disappear, what must stay)
    (f"connect with password={SECRET} please", SECRET, "password="),
    (f"config: pwd: {SECRET}\nhost: db1", SECRET, "host: db1"),
    (f"https://api.example.com/v1?api_key={SECRET}&page=2", SECRET, "page=2"),
    (f"postgresql://app:{SECRET}@db.internal:5432/prod", SECRET, "postgresql://app:"),
    (f"redis://:{SECRET}@cache:6379/0", SECRET, "@cache:6379/0"),
    (f"key file:\n{PEM}\nend", "MIIEowIBAAKCAQEAu1SU1LfVLPHCozMxH2Mo4lgOEePzNm0tRgeLezV6ffAt0gun", "end"),
    ("-----BEGIN OPENSSH PRIVATE KEY-----\nb3BlbnNzaC1rZXktdjEAAAAABG5vbmUAAAAEbm9uZQ (truncated", "b3BlbnNz", ""),
    ("gitlab token glpat-" + "x1Y2z3" * 4, "glpat-x1Y2", "gitlab token"),
    ("AWS session ASIA" + "ABCDEFGHIJKLMNOP", "ASIAABCDEF", "AWS session"),
    ("stripe rk_test_" + "a1B2c3D4" * 3, "rk_test_a1B2", "stripe"),
]


@pytest.mark.parametrize(("text", "gone", "kept"), TEXT_CASES)
def test_secret_shapes_inside_text_are_redacted(text: str, gone: str, kept: str) -> None:
    redacted, paths = REDACTOR.redact({"note": text})
    assert gone not in redacted["note"] and kept in redacted["note"] and MARKER in redacted["note"]
    assert paths == ["$.note"]


def tool_result_with_json_text(document: Any) -> str:
    return json.dumps({"content": [{"type": "text", "text": json.dumps(document)}], "isError": False})


def test_secrets_inside_a_json_text_content_are_redacted() -> None:
    response = tool_result_with_json_text({"user": "ann", "password": SECRET, "db": {"dsn": "x"}})
    stored, paths = REDACTOR.redact_json_text(response, "response")
    assert SECRET not in stored
    inner = json.loads(json.loads(stored)["content"][0]["text"])
    assert inner == {"user": "ann", "password": MARKER, "db": {"dsn": "x"}}
    assert paths == ["response.content[0].text.password"]


def test_json_text_nested_twice_is_redacted() -> None:
    inner = json.dumps({"clientSecret": SECRET})
    stored, paths = REDACTOR.redact_json_text(tool_result_with_json_text({"body": inner}), "response")
    assert SECRET not in stored and paths == ["response.content[0].text.body.clientSecret"]


def test_clean_json_text_content_is_kept_byte_for_byte() -> None:
    text = '{"title":  "Q3",\n "pages": [1, 2]}'
    response = json.dumps({"content": [{"type": "text", "text": text}]})
    stored, paths = REDACTOR.redact_json_text(response, "response")
    assert json.loads(stored)["content"][0]["text"] == text and paths == []


@pytest.mark.parametrize(
    "secret",
    [
        "mmcpsvc_" + "A" * 54,  # a service credential
        "mmcs_" + "B" * 16 + "_" + "C" * 32,  # a console session
        "mmcr_" + "D" * 48,  # a refresh token
    ],
)
def test_our_own_token_shapes_are_redacted_in_text(secret: str) -> None:
    redactor = Redactor(frozenset(DEFAULT_REDACT_KEYS.split(",")), 65_536)
    stored, _ = redactor.to_stored_text({"note": f"use {secret} to call"}, "request")
    assert secret not in stored


@pytest.mark.parametrize("key", ["bearer", "sessionid", "sessionId"])
def test_bearer_and_session_id_keys_are_redacted(key: str) -> None:
    redactor = Redactor(frozenset(DEFAULT_REDACT_KEYS.split(",")), 65_536)
    stored, _ = redactor.to_stored_text({key: "opaque-value-123"}, "request")
    assert "opaque-value-123" not in stored


@pytest.mark.parametrize(
    ("payload", "secret"),
    [
        ({"headers": [["password", "P1-secret"]]}, "P1-secret"),
        ({"env": [{"name": "DB_PASSWORD", "value": "P2-secret"}]}, "P2-secret"),
        ({"headers": [{"key": "Authorization", "value": "opaque-P3"}]}, "opaque-P3"),
    ],
)
def test_name_value_entries_naming_a_secret_are_redacted(payload: dict[str, Any], secret: str) -> None:
    redactor = Redactor(frozenset(DEFAULT_REDACT_KEYS.split(",")), 65_536)
    stored, paths = redactor.to_stored_text(payload, "request")
    assert secret not in stored and paths


def test_ordinary_name_value_entries_stay_readable() -> None:
    redactor = Redactor(frozenset(DEFAULT_REDACT_KEYS.split(",")), 65_536)
    payload = {"headers": [{"name": "Accept", "value": "text/html"}], "pairs": [["author", "Ann"]]}
    stored, paths = redactor.to_stored_text(payload, "request")
    assert "text/html" in stored and "Ann" in stored and paths == []
