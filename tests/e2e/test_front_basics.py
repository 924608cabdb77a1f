"""The front end to end with the official SDK client, in both protocol eras."""

from __future__ import annotations

import httpx
import pytest

from tests.conftest import World, mcp_client

ERAS = ["legacy", "2026-07-28"]


@pytest.mark.parametrize("mode", ERAS)
async def test_lists_and_calls_private_toolkit(world: World, front: str, mode: str) -> None:
    async with mcp_client(f"{front}/acme/tools/mcp", world.keys["acme:member"], mode) as client:
        names = {t.name for t in (await client.list_tools()).tools}
        assert "echo" in names and "approval_status" in names
        assert "wipe" not in names  # blocked tools are hidden
        result = await client.call_tool("add", {"a": 2, "b": 40})
    assert not result.is_error
    assert result.structured_content == {"sum": 42}
    assert world.upstream.calls["add"] == 1


@pytest.mark.parametrize("mode", ERAS)
async def test_public_toolkit_is_usable_by_other_orgs(world: World, front: str, mode: str) -> None:
    async with mcp_client(f"{front}/acme/shared/mcp", world.keys["globex:member"], mode) as client:
        result = await client.call_tool("echo", {"text": "hi from globex"})
    assert result.content[0].text == "hi from globex"  # type: ignore[union-attr]


async def test_private_toolkit_of_other_org_is_identical_to_unknown(world: World, front: str) -> None:
    headers = {"Authorization": f"Bearer {world.keys['globex:admin']}", "Accept": "application/json, text/event-stream"}
    body = {"jsonrpc": "2.0", "id": 1, "method": "tools/list", "params": {}}
    async with httpx.AsyncClient() as http:
        private = await http.post(f"{front}/acme/tools/mcp", json=body, headers=headers)
        unknown = await http.post(f"{front}/acme/no-such-toolkit/mcp", json=body, headers=headers)
        unknown_org = await http.post(f"{front}/nobody/tools/mcp", json=body, headers=headers)
    assert private.status_code == unknown.status_code == unknown_org.status_code == 404
    assert private.content == unknown.content == unknown_org.content


@pytest.mark.parametrize("token", [None, "mmcp_garbage", "not-a-token", "a.b.c"])
async def test_missing_or_bad_credential_is_401(world: World, front: str, token: str | None) -> None:
    headers = {"Accept": "application/json, text/event-stream"}
    if token:
        headers["Authorization"] = f"Bearer {token}"
    async with httpx.AsyncClient() as http:
        response = await http.post(
            f"{front}/acme/shared/mcp", json={"jsonrpc": "2.0", "id": 1, "method": "ping"}, headers=headers
        )
    assert response.status_code == 401
    assert response.headers["www-authenticate"].startswith("Bearer")


async def test_revoked_key_is_refused_at_once(world: World, front: str) -> None:
    key = await world.operator.create_api_key("acme", "short-lived", "member")
    async with mcp_client(f"{front}/acme/tools/mcp", key.secret) as client:
        await client.call_tool("echo", {"text": "before"})
    await world.operator.revoke_api_key("acme", key.key.id)
    headers = {"Authorization": f"Bearer {key.secret}", "Accept": "application/json, text/event-stream"}
    async with httpx.AsyncClient() as http:
        response = await http.post(
            f"{front}/acme/tools/mcp",
            headers=headers,
            json={
                "jsonrpc": "2.0",
                "id": 1,
                "method": "tools/call",
                "params": {"name": "echo", "arguments": {"text": "x"}},
            },
        )
    assert response.status_code == 401
    assert world.upstream.calls["echo"] == 1


@pytest.mark.parametrize("mode", ERAS)
async def test_blocked_tool_is_rejected_and_never_runs(world: World, front: str, mode: str) -> None:
    async with mcp_client(f"{front}/acme/tools/mcp", world.keys["acme:member"], mode) as client:
        result = await client.call_tool("wipe", {"target": "prod"})
    assert result.is_error
    assert "blocked" in result.content[0].text  # type: ignore[union-attr]
    assert world.upstream.calls["wipe"] == 0


@pytest.mark.parametrize("mode", ERAS)
async def test_invalid_arguments_rejected_before_backend(world: World, front: str, mode: str) -> None:
    async with mcp_client(f"{front}/acme/tools/mcp", world.keys["acme:member"], mode) as client:
        result = await client.call_tool("add", {"a": "two", "b": 1})
        missing = await client.call_tool("add", {"a": 1})
    assert result.is_error and "Invalid arguments" in result.content[0].text  # type: ignore[union-attr]
    assert missing.is_error
    assert world.upstream.calls["add"] == 0


async def test_backend_results_pass_through_unchanged(world: World, front: str) -> None:
    async with mcp_client(f"{front}/acme/tools/mcp", world.keys["acme:member"]) as client:
        media = await client.call_tool("media", {})
        failed = await client.call_tool("fails", {})
    assert [c.type for c in media.content] == ["text", "image", "audio", "resource"]
    assert media.structured_content == {"kinds": ["text", "image", "audio", "resource"]}
    assert failed.is_error and failed.content[0].text == "it broke"  # type: ignore[union-attr]


async def test_backend_timeout_is_a_tool_error(world: World, front: str) -> None:
    async with mcp_client(f"{front}/acme/tools/mcp", world.keys["acme:member"]) as client:
        result = await client.call_tool("slow", {"seconds": 5})
    assert result.is_error and "timed out" in result.content[0].text  # type: ignore[union-attr]
    audit = await world.operator.query_audit("acme", tool="slow")
    assert [r.status for r in audit.records] == ["timeout"]


async def test_backend_down_is_a_tool_error(world: World, front: str) -> None:
    await world.operator.upsert_toolkit("acme", "tools", backend_url="http://127.0.0.1:9/mcp")
    async with mcp_client(f"{front}/acme/tools/mcp", world.keys["acme:member"]) as client:
        result = await client.call_tool("echo", {"text": "x"})
    assert result.is_error and "backend" in result.content[0].text  # type: ignore[union-attr]
    audit = await world.operator.query_audit("acme", tool="echo")
    assert [r.status for r in audit.records] == ["backend_error"]


async def test_server_discover_probe_answers_quickly_and_cleanly(world: World, front: str) -> None:
    headers = {
        "Authorization": f"Bearer {world.keys['acme:member']}",
        "Accept": "application/json, text/event-stream",
        "MCP-Protocol-Version": "2026-07-28",
        "Mcp-Method": "server/discover",
    }
    body = {
        "jsonrpc": "2.0",
        "id": 1,
        "method": "server/discover",
        "params": {
            "_meta": {
                "io.modelcontextprotocol/protocolVersion": "2026-07-28",
                "io.modelcontextprotocol/clientCapabilities": {},
                "io.modelcontextprotocol/clientInfo": {"name": "probe", "version": "1"},
            }
        },
    }
    async with httpx.AsyncClient() as http:
        response = await http.post(f"{front}/acme/tools/mcp", json=body, headers=headers)
    assert response.status_code == 200, response.text
    result = response.json()["result"]
    assert "2026-07-28" in result["supportedVersions"] and "tools" in result["capabilities"]


@pytest.mark.parametrize("version", [None, "2025-06-18", "2025-11-25"])
async def test_initialize_era_versions_are_served(world: World, front: str, version: str | None) -> None:
    headers = {"Authorization": f"Bearer {world.keys['acme:member']}", "Accept": "application/json, text/event-stream"}
    if version:
        headers["MCP-Protocol-Version"] = version
    body = {"jsonrpc": "2.0", "id": 1, "method": "tools/list", "params": {}}
    async with httpx.AsyncClient() as http:
        response = await http.post(f"{front}/acme/tools/mcp", json=body, headers=headers)
    assert response.status_code == 200 and "echo" in {t["name"] for t in response.json()["result"]["tools"]}


async def test_tool_icons_and_meta_pass_through(world: World, front: str) -> None:
    """Tool metadata is what the backend declared: title, annotations, and icons and _meta too."""
    async with mcp_client(f"{front}/acme/tools/mcp", world.keys["acme:member"]) as client:
        tools = {t.name: t for t in (await client.list_tools()).tools}
    echo = tools["echo"]
    assert [str(i.src) for i in echo.icons or []] == ["https://example.com/echo.png"]
    assert (echo.meta or {}).get("example.com/owner") == "tests"
    assert echo.annotations is not None and echo.annotations.read_only_hint


async def test_the_clients_request_meta_reaches_the_backend(world: World, front: str) -> None:
    """Request `_meta` passes through; the gateway's own and protocol keys of this hop do not."""
    call = {
        "jsonrpc": "2.0",
        "id": 1,
        "method": "tools/call",
        "params": {
            "name": "show_meta",
            "arguments": {},
            "_meta": {"example.com/trace": "abc", "monomcp/internal": "x", "io.modelcontextprotocol/foo": 1},
        },
    }
    headers = {
        "Authorization": f"Bearer {world.keys['acme:member']}",
        "Accept": "application/json, text/event-stream",
        "MCP-Protocol-Version": "2025-06-18",
    }
    async with httpx.AsyncClient() as http:
        answer = (await http.post(f"{front}/acme/tools/mcp", json=call, headers=headers)).json()
    seen = answer["result"]["structuredContent"]["meta"]
    assert seen.get("example.com/trace") == "abc"
    assert "monomcp/internal" not in seen and "io.modelcontextprotocol/foo" not in seen
