from __future__ import annotations

import json

from policy_service.audit.redaction import MARKER, Redactor

REDACTOR = Redactor(frozenset({"password", "api_key", "authorization", "set-cookie"}), max_payload_bytes=200)


def test_redacts_keys_at_any_depth_and_reports_paths() -> None:
    value = {"user": "ann", "password": "hunter2", "nested": [{"API-Key": "k1"}, {"ok": 1}]}
    redacted, paths = REDACTOR.redact(value)
    assert redacted == {"user": "ann", "password": MARKER, "nested": [{"API-Key": MARKER}, {"ok": 1}]}
    assert paths == ["$.password", "$.nested[0].API-Key"]


def test_environment_maps_keep_names_and_lose_every_value() -> None:
    value = {"backend_stdio": {"command": "srv", "env": {"GREETING": "hello", "EMPTY": ""}}}
    redacted, paths = REDACTOR.redact(value)
    assert redacted == {"backend_stdio": {"command": "srv", "env": {"GREETING": MARKER, "EMPTY": ""}}}
    assert paths == ["$.backend_stdio.env.GREETING"]


def test_redacts_credential_patterns_inside_values() -> None:
    jwt = "eyJhbGciOiJIUzI1NiJ9.eyJzdWIiOiIxMjM0NSJ9.c2lnbmF0dXJlc2lnbmF0dXJl"
    value = {"note": f"use mmcp_{'a' * 54} or {jwt}", "aws": "AKIAABCDEFGHIJKLMNOP"}
    redacted, paths = REDACTOR.redact(value)
    assert "mmcp_" not in json.dumps(redacted) and "eyJ" not in json.dumps(redacted) and "AKIA" not in redacted["aws"]
    assert set(paths) == {"$.note", "$.aws"}


def test_large_payload_truncated_with_marker_and_size() -> None:
    text, _ = REDACTOR.to_stored_text({"blob": "x" * 1000})
    stored = json.loads(text)
    assert stored["_truncated"] is True and stored["original_bytes"] > 1000
    assert len(stored["preview"]) <= 200


def test_non_json_text_is_scanned_too() -> None:
    text, paths = REDACTOR.redact_json_text("token mmcp_" + "b" * 54)
    assert "mmcp_" not in text and paths == ["$"]


def test_paths_use_the_given_root() -> None:
    _, paths = REDACTOR.redact({"password": "x"}, "request")
    assert paths == ["request.password"]
