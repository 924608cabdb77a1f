"""tools/list through the gateway pages a large catalogue: an MCP client follows nextCursor
and sees every tool once, the built-in approval_status last; a forged cursor is -32602."""

from __future__ import annotations

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
