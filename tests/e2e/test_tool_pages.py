"""tools/list through the gateway pages a large catalogue: an MCP client follows nextCursor
and sees every tool once, the built-in approval_status last; a forged cursor is -32602."""

from __future__ import annotations

import json

import pytest
from mcp.shared.exceptions import MCPError

from tests.conftest import World, mcp_client

TOOLS = 1_100


async def test_an_sdk_client_pages_through_a_large_catalogue(world: World, front: str) -> None:
    names = [f"tool_{i:05d}" for i in range(TOOLS)]
    await world.operator.upsert_toolkit("acme", "big", visibility="private", backend_url=world.upstream_url)
    await world.operator.sync_tools("acme", "big", [{"name": n, "default_permission": "always_allow"} for n in names])
    listed: list[str] = []
    cursors = 0
    async with mcp_client(f"{front}/acme/big/mcp", world.keys["acme:member"]) as client:
        cursor: str | None = None
        while True:
            page = await client.list_tools(cursor=cursor)
            listed += [t.name for t in page.tools]
            cursor = page.next_cursor
            if cursor is None:
                break
            cursors += 1
        assert cursors == 2
        assert listed == [*names, "approval_status"]
        with pytest.raises(MCPError) as forged:
            await client.list_tools(cursor="bm90LW91cnM")
        assert forged.value.error.code == -32602
    # Regression: each page's audit row named the cached first page's tools, whatever the cursor.
    records = (await world.operator.query_audit("acme", page_size=100)).records
    pages = [
        json.loads(r.response_json or "null") for r in records if r.method == "tools/list" and r.toolkit_slug == "big"
    ]
    served = sorted((p["tools"] for p in pages if p), key=lambda tools: tools[0])
    assert served == [names[:500], names[500:1000], [*names[1000:], "approval_status"]]


async def test_a_tool_beyond_the_first_page_of_a_catalogue_too_big_for_one_message(world: World, front: str) -> None:
    """Regression: the front loaded a credential's whole tool list in one ListTools; a catalogue
    bigger than the gRPC message limit (16 MiB) failed every call and tools/list. Now the first
    page is cached and the called tool is asked for by name: it is validated and runs."""
    filler = "x" * 16_000
    padding = [
        {"name": f"a_{i:05d}", "description": filler, "default_permission": "always_allow"} for i in range(1_100)
    ]
    echo = {
        "name": "echo",
        "input_schema_json": '{"type":"object","properties":{"text":{"type":"string"}},"required":["text"]}',
        "default_permission": "always_allow",
    }
    await world.operator.upsert_toolkit("acme", "huge", visibility="private", backend_url=world.upstream_url)
    for start in range(0, len(padding), 200):  # each sync message stays well under the limit
        await world.operator.sync_tools("acme", "huge", padding[start : start + 200])
    await world.operator.sync_tools("acme", "huge", [echo])
    async with mcp_client(f"{front}/acme/huge/mcp", world.keys["acme:member"]) as client:
        first = await client.list_tools()
        assert [t.name for t in first.tools] == [p["name"] for p in padding[:500]] and first.next_cursor
        ran = await client.call_tool("echo", {"text": "far away"})
        assert not ran.is_error and ran.content[0].text == "far away"  # type: ignore[union-attr]
        refused = await client.call_tool("echo", {})
        assert refused.is_error and "Invalid arguments for 'echo'" in refused.content[0].text  # type: ignore[union-attr]
        with pytest.raises(MCPError) as unknown:
            await client.call_tool("a_99999", {})
        assert "Unknown tool" in unknown.value.error.message
