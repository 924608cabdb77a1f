"""2026-07-28: a backend that asks the client for input the stateless way (an
`input_required` result with its own `requestState`) is passed through. The client answers
and retries, on any replica; the front hands the backend its own state back, sealed in
ours on the way (bound to the caller, tool and arguments), and each round is authorized and
audited like a call."""

from __future__ import annotations

from typing import Any

import httpx
import mcp_types as types

from mcp_front.backends.catalogue_sync import sync_catalogue
from policy_service.toolkits.egress import EgressPolicy
from tests.conftest import World, mcp_client
from tests.support import input_backend

VERSION = "2026-07-28"
ENVELOPE = "io.modelcontextprotocol/protocolVersion"
CAPS = "io.modelcontextprotocol/clientCapabilities"


async def _register(world: World, url: str) -> None:
    await world.operator.upsert_toolkit("acme", "asks", name="asks", visibility="private", backend_url=url)
    async with world.client("acme:admin") as admin:
        await sync_catalogue(admin, "acme", "asks", False, EgressPolicy(allow_private=True))
    await world.operator.set_tool_default("acme", "asks", "greet", "always_allow")


async def test_the_sdk_client_answers_a_backend_input_request(world: World, front: str) -> None:
    asked: list[str] = []

    async def elicit(context: Any, params: types.ElicitRequestParams) -> types.ElicitResult:
        asked.append(params.message)
        return types.ElicitResult(action="accept", content={"name": "carol"})

    async with input_backend.serve() as (url, calls):
        await _register(world, url)
        async with mcp_client(
            f"{front}/acme/asks/mcp", world.keys["acme:member"], VERSION, elicitation_callback=elicit
        ) as c:
            result = await c.call_tool("greet", {"greeting": "hello"})
    assert not result.is_error, result
    assert result.content[0].text == f"hello, carol (state {input_backend.BACKEND_STATE})"  # type: ignore[union-attr]
    assert asked == ["Your name?"] and calls == {"asked": 1, "answered": 1}
    statuses = [r.status for r in (await world.operator.query_audit("acme", toolkit="asks", tool="greet")).records]
    assert statuses.count("ok") == 2  # each round is a call of its own


async def _call(front: str, key: str, params: dict[str, Any]) -> dict[str, Any]:
    body = {
        "jsonrpc": "2.0",
        "id": 1,
        "method": "tools/call",
        "params": {**params, "_meta": {ENVELOPE: VERSION, CAPS: {"elicitation": {"form": {}}}}},
    }
    headers = {
        "Authorization": f"Bearer {key}",
        "Accept": "application/json, text/event-stream",
        "MCP-Protocol-Version": VERSION,
        "Mcp-Method": "tools/call",
        "Mcp-Name": str(params["name"]),
    }
    async with httpx.AsyncClient(timeout=30) as http:
        response = await http.post(f"{front}/acme/asks/mcp", headers=headers, json=body)
    return dict(response.json())


async def test_the_round_is_stateless_and_bound_to_its_caller(world: World, front: str) -> None:
    member = world.keys["acme:member"]
    args = {"name": "greet", "arguments": {"greeting": "hi"}}
    answer = {"name": {"action": "accept", "content": {"name": "dave"}}}
    async with input_backend.serve() as (url, calls):
        await _register(world, url)
        first = (await _call(front, member, args))["result"]
        assert first["resultType"] == "input_required" and "name" in first["inputRequests"]
        sealed = first["requestState"]
        assert input_backend.BACKEND_STATE not in sealed  # the backend's state travels sealed
        # Another caller, or other arguments, cannot resume the round.
        for key, other in ((world.keys["acme:admin"], args), (member, {**args, "arguments": {"greeting": "yo"}})):
            refused = await _call(front, key, {**other, "inputResponses": answer, "requestState": sealed})
            assert "error" in refused and "dave" not in str(refused)
        done = (await _call(front, member, {**args, "inputResponses": answer, "requestState": sealed}))["result"]
    assert done["content"][0]["text"] == f"hi, dave (state {input_backend.BACKEND_STATE})"
    assert calls["answered"] == 1
