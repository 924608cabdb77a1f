"""JSON-RPC screening decides from the raw body alone."""

from __future__ import annotations

import json

import pytest

from mcp_front.edge.screen import INVALID_PARAMS, INVALID_REQUEST, PARSE_ERROR, screen


def _call(name: str, method: str = "tools/call") -> bytes:
    return json.dumps({"jsonrpc": "2.0", "id": 3, "method": method, "params": {"name": name}}).encode()


def test_ordinary_requests_pass_untouched() -> None:
    verdict = screen(_call("echo"), "")
    assert verdict.respond is None and verdict.audit_status is None


@pytest.mark.parametrize("char", [chr(c) for c in [*range(0x20), 0x7F]])
def test_every_control_character_in_a_tool_name_is_refused(char: str) -> None:
    verdict = screen(_call(f"a{char}b"), "2025-06-18")
    assert verdict.respond is not None
    status, body = verdict.respond
    assert (status, body["id"], body["error"]["code"]) == (200, 3, INVALID_PARAMS)
    assert char not in verdict.tool + verdict.request_json and f"\\u{ord(char):04x}" in verdict.tool


def test_control_character_in_method_is_an_invalid_request_and_400_on_the_modern_era() -> None:
    verdict = screen(_call("echo", method="tools/\x00call"), "2026-07-28")
    assert verdict.respond is not None
    assert (verdict.respond[0], verdict.respond[1]["error"]["code"]) == (400, INVALID_REQUEST)
    assert verdict.method == "tools/\\u0000call"


@pytest.mark.parametrize("literal", ["NaN", "Infinity", "-Infinity", "1e400"])
def test_non_finite_numbers_are_parse_errors(literal: str) -> None:
    verdict = screen(f'{{"jsonrpc":"2.0","id":1,"method":"ping","params":{{"x":{literal}}}}}'.encode(), "")
    assert verdict.respond is not None and verdict.respond[1]["error"]["code"] == PARSE_ERROR
    assert verdict.audit_status == "invalid"


@pytest.mark.parametrize("body", [b"[1]", b'{"jsonrpc":"2.0","id":1}', b'{"method": 5}'])
def test_bad_envelopes_are_audited_and_left_to_the_sdk(body: bytes) -> None:
    verdict = screen(body, "")
    assert verdict.audit_status == "invalid" and verdict.respond is None


def test_client_responses_pass() -> None:
    assert screen(b'{"jsonrpc":"2.0","id":1,"result":{}}', "").audit_status is None
