"""The lean path (single tools/call, tools/list, ping) answers exactly as the SDK path does,
in both protocol eras, audits what it answers, and leaves everything else to the SDK.

A request with one extra, ignored parameter is served by the SDK path: the pair shows both
paths give the client the same answer."""

from __future__ import annotations

import json
from typing import Any

import httpx
import pytest

from mcp_front.mcp.lean import lean_params
from tests.conftest import World

ENVELOPE = {"io.modelcontextprotocol/protocolVersion": "2026-07-28", "io.modelcontextprotocol/clientCapabilities": {}}


async def _post(front: str, key: str, body: dict[str, Any], headers: dict[str, str]) -> httpx.Response:
    async with httpx.AsyncClient(timeout=30) as http:
        return await http.post(
            f"{front}/acme/tools/mcp",
            content=json.dumps(body),
            headers={
                "Authorization": f"Bearer {key}",
                "Accept": "application/json, text/event-stream",
                "Content-Type": "application/json",
                **headers,
            },
        )


def _request(method: str, params: dict[str, Any], era: str) -> tuple[dict[str, Any], dict[str, str]]:
    headers = {"MCP-Protocol-Version": era}
    if era == "2026-07-28":
        params = {**params, "_meta": ENVELOPE}
        headers["Mcp-Method"] = method
        if method == "tools/call":
            headers["Mcp-Name"] = params["name"]
    return {"jsonrpc": "2.0", "id": 7, "method": method, "params": params}, headers


def _sdk_twin(body: dict[str, Any]) -> dict[str, Any]:
    """The same request with a parameter every version ignores: the lean path declines it."""
    assert lean_params(body) is not None
    twin = {**body, "params": {**body["params"], "x-unused": 1}}
    assert lean_params(twin) is None
    return twin


@pytest.mark.parametrize("era", ["2025-06-18", "2025-11-25", "2026-07-28"])
@pytest.mark.parametrize(
    "method, params",
    [
        ("tools/call", {"name": "echo", "arguments": {"text": "héllo"}}),
        ("tools/call", {"name": "echo", "arguments": {"text": 5}}),  # invalid arguments: a tool error
        ("tools/list", {}),
        ("ping", {}),
    ],
)
async def test_the_lean_path_answers_as_the_sdk_path_does(
    world: World, front: str, era: str, method: str, params: dict[str, Any]
) -> None:
    if method == "ping" and era == "2026-07-28":
        pytest.skip("ping is not a 2026-07-28 method")
    key = world.keys["acme:member"]
    body, headers = _request(method, params, era)
    lean = await _post(front, key, body, headers)
    sdk = await _post(front, key, _sdk_twin(body), headers)
    assert lean.status_code == sdk.status_code == 200
    assert lean.headers["content-type"] == sdk.headers["content-type"] == "application/json"
    assert lean.json() == sdk.json()
    if method == "tools/call" and params["arguments"]["text"] == "héllo":
        assert lean.json()["result"]["content"][0]["text"] == "héllo"
        assert world.upstream.calls["echo"] == 2  # each path ran the tool once


async def test_lean_requests_are_audited_like_the_sdk_paths(world: World, front: str) -> None:
    key = world.keys["acme:member"]
    for method, params in (("tools/call", {"name": "echo", "arguments": {"text": "a"}}), ("tools/list", {})):
        body, headers = _request(method, params, "2025-11-25")
        assert (await _post(front, key, body, headers)).status_code == 200
    records = (await world.operator.query_audit("acme", page_size=100)).records
    seen = sorted(f"{r.method}:{r.tool}:{r.status}" for r in records if r.method.startswith("tools/"))
    assert seen == ["tools/call:echo:ok", "tools/list::ok"]
    echo = next(r for r in records if r.tool == "echo")
    assert json.loads(echo.response_json)["content"][0]["text"] == "a" and echo.completed_at.seconds > 0


async def test_a_header_that_disagrees_with_the_body_is_refused_by_the_sdk(world: World, front: str) -> None:
    body, headers = _request("tools/call", {"name": "echo", "arguments": {"text": "a"}}, "2026-07-28")
    answer = await _post(front, world.keys["acme:member"], body, {**headers, "Mcp-Name": "other"})
    assert answer.status_code == 400
    assert world.upstream.calls["echo"] == 0
