from __future__ import annotations

import json

import pytest

from policy_service.audit import redaction
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


def test_text_too_large_to_redact_is_recorded_by_size_without_a_preview(monkeypatch: pytest.MonkeyPatch) -> None:
    """A backend's result of many small objects cost the one policy service seconds to parse,
    redact and encode (14 MiB: 4 s) for a preview of `max_payload_bytes`: every tenant's calls
    waited. Past MAX_REDACTED_CHARS the text is not parsed and nothing of it is kept."""
    monkeypatch.setattr(redaction, "MAX_REDACTED_CHARS", 1000)
    text = json.dumps({"items": [{"a": i, "password": "hunter2"} for i in range(100)]})
    stored, paths = REDACTOR.redact_json_text(text, "$.response")
    assert json.loads(stored) == {"_truncated": True, "original_bytes": len(text), "preview": ""}
    assert paths == ["$.response"]


def test_objects_past_the_node_budget_are_one_marker(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(redaction, "MAX_NODES", 10)
    redactor = Redactor(frozenset({"password"}), max_payload_bytes=100_000)
    value = {"password": "x", "items": [{"a": i} for i in range(50)], "more": {f"k{i}": {} for i in range(50)}}
    redacted, paths = redactor.redact(value)
    assert redacted["password"] == MARKER
    # the root and `items` are two of the ten: eight items are kept, the ninth and the rest are markers
    assert redacted["items"] == [*({"a": i} for i in range(8)), MARKER, MARKER]
    assert redacted["more"] == MARKER
    assert paths == ["$.password", "$.items[8]", "$.items[9:]", "$.more:"]  # `more` and any key after it
