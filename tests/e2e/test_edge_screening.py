"""The edge refuses what must never reach the policy service or a backend: control
characters in names, NaN/Infinity, malformed JSON; each refusal is audited, safely."""

from __future__ import annotations

import json
import logging
from typing import Any

import httpx
import pytest

from tests.conftest import World

ACCEPT = {"Accept": "application/json, text/event-stream", "Content-Type": "application/json"}
MODERN_META = {
    "io.modelcontextprotocol/protocolVersion": "2026-07-28",
    "io.modelcontextprotocol/clientCapabilities": {},
}


def _headers(world: World, era: str) -> dict[str, str]:
    headers = {"Authorization": f"Bearer {world.keys['acme:member']}", **ACCEPT}
    if era == "2026-07-28":
        headers.update({"MCP-Protocol-Version": era})
    return headers


def _call(name: str, era: str, method: str = "tools/call") -> dict[str, Any]:
    params: dict[str, Any] = {"name": name, "arguments": {"text": "x"}}
    if era == "2026-07-28":
        params["_meta"] = MODERN_META
    return {"jsonrpc": "2.0", "id": 7, "method": method, "params": params}


async def _rows(world: World, status: str = "") -> list[Any]:
    return list((await world.operator.query_audit("", toolkit="tools", status=status, page_size=200)).records)


@pytest.mark.parametrize("era", ["legacy", "2026-07-28"])
@pytest.mark.parametrize("char", ["\x00", "\x1b", "\n", "\x7f"])
async def test_control_characters_in_tool_name_are_refused_and_audited(
    world: World, front: str, era: str, char: str
) -> None:
    async with httpx.AsyncClient() as http:
        response = await http.post(
            f"{front}/acme/tools/mcp", headers=_headers(world, era), json=_call(f"ec{char}ho", era)
        )
    error = response.json()["error"]
    assert error["code"] == -32602 and "control characters" in error["message"]
    assert response.json()["id"] == 7
    assert world.upstream.calls["echo"] == 0
    rows = [r for r in await _rows(world) if r.method == "tools/call"]
    assert len(rows) == 1 and rows[0].status == "invalid"
    stored = rows[0].tool + rows[0].request_json + rows[0].error
    assert char not in stored and f"\\u{ord(char):04x}" in rows[0].tool


@pytest.mark.parametrize("era", ["legacy", "2026-07-28"])
async def test_control_characters_in_method_are_refused_and_audited(world: World, front: str, era: str) -> None:
    async with httpx.AsyncClient() as http:
        response = await http.post(
            f"{front}/acme/tools/mcp", headers=_headers(world, era), json=_call("echo", era, method="tools/li\x00st")
        )
    assert response.json()["error"]["code"] == -32600
    rows = [r for r in await _rows(world) if r.status == "invalid"]
    assert [r.method for r in rows] == ["tools/li\\u0000st"]
    assert "\x00" not in rows[0].request_json


@pytest.mark.parametrize("literal", [b"NaN", b"Infinity", b"-Infinity", b"1e999"])
async def test_nan_and_infinity_are_a_parse_error_without_traceback(
    world: World, front: str, literal: bytes, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO)
    body = (
        b'{"jsonrpc":"2.0","id":1,"method":"tools/call","params":{"name":"add","arguments":{"a":%s,"b":1}}}' % literal
    )
    async with httpx.AsyncClient() as http:
        response = await http.post(f"{front}/acme/tools/mcp", headers=_headers(world, "legacy"), content=body)
    assert response.status_code == 400 and response.json()["error"]["code"] == -32700
    assert world.upstream.calls["add"] == 0
    rows = await _rows(world, "invalid")
    assert len(rows) == 1 and "Parse error" in rows[0].error
    assert not [r for r in caplog.records if r.exc_info]


async def test_parse_errors_and_bad_envelopes_are_audited(world: World, front: str) -> None:
    async with httpx.AsyncClient() as http:
        for body in (b"{not json", b"[1, 2, 3]", b'{"jsonrpc": "2.0", "id": 1}'):
            response = await http.post(f"{front}/acme/tools/mcp", headers=_headers(world, "legacy"), content=body)
            assert response.status_code == 400 and "error" in response.json()
    assert len(await _rows(world, "invalid")) == 3


@pytest.mark.parametrize("era", ["legacy", "2026-07-28"])
@pytest.mark.parametrize("escaped", [b"\\ud800", b"x\\uDFFFy", b"\\ud83d"])
async def test_lone_surrogates_are_a_parse_error_and_audited(
    world: World, front: str, era: str, escaped: bytes, caplog: pytest.LogCaptureFixture
) -> None:
    """A lone surrogate escape decodes to text no UTF-8 store takes: before, it reached the
    policy service, whose redaction failed, so the request went unaudited ("internal error")."""
    caplog.set_level(logging.INFO)
    meta = b',"_meta":{"io.modelcontextprotocol/protocolVersion":"2026-07-28"}' if era == "2026-07-28" else b""
    body = b'{"jsonrpc":"2.0","id":3,"method":"tools/call","params":{"name":"echo","arguments":{"text":"%s"}%s}}' % (
        escaped,
        meta,
    )
    headers = _headers(world, era)
    if era == "2026-07-28":
        headers.update({"Mcp-Method": "tools/call", "Mcp-Name": "echo"})
    async with httpx.AsyncClient() as http:
        response = await http.post(f"{front}/acme/tools/mcp", headers=headers, content=body)
        paired = _call("echo", era)
        paired["params"]["arguments"]["text"] = "\U0001f600"  # sent as an escaped pair: a real character
        fine = await http.post(f"{front}/acme/tools/mcp", headers=headers, content=json.dumps(paired))
    assert response.status_code == 400 and response.json()["error"]["code"] == -32700
    assert world.upstream.calls["echo"] == 1 and "error" not in fine.json(), fine.text
    rows = await _rows(world, "invalid")
    assert len(rows) == 1 and "surrogate" in rows[0].error
    assert not [r for r in caplog.records if r.exc_info]


@pytest.mark.parametrize("request_id", [b"null", b"true", b"1.5", b"[1]", b'{"a":1}'])
async def test_a_request_with_an_invalid_id_is_audited(world: World, front: str, request_id: bytes) -> None:
    """MCP ids are strings or integers; the SDK drops any other with a bare 202, and before,
    nothing recorded that the request came."""
    body = b'{"jsonrpc":"2.0","id":%s,"method":"tools/call","params":{"name":"echo","arguments":{"text":"x"}}}' % (
        request_id
    )
    async with httpx.AsyncClient() as http:
        response = await http.post(f"{front}/acme/tools/mcp", headers=_headers(world, "legacy"), content=body)
    assert response.status_code in (202, 400)
    assert world.upstream.calls["echo"] == 0
    rows = await _rows(world, "invalid")
    assert len(rows) == 1 and "id is not" in rows[0].error
