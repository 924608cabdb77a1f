"""A backend answer nested past the JSON parser's depth is a backend failure like any other
answer that is not MCP: the client gets a clear error result in its era, and the audit row
is completed (`backend_error`), never left `started` (DESIGN, Failure). Real front, real SDK
clients of both eras, a real HTTP backend (tests/support/unruly_backend.py)."""

from __future__ import annotations

import asyncio

import pytest

from mcp_front.backends.catalogue_sync import sync_catalogue
from policy_service.toolkits.egress import EgressPolicy
from tests.conftest import World, mcp_client
from tests.support.servers import serve_asgi
from tests.support.unruly_backend import UnrulyBackend


@pytest.mark.parametrize("era", ["legacy", "2026-07-28"])
async def test_an_answer_nested_past_the_parsers_depth_fails_the_call_cleanly(
    world: World, front: str, era: str
) -> None:
    async with serve_asgi(UnrulyBackend()) as base:
        await world.operator.upsert_toolkit("acme", "unruly", name="unruly", visibility="private", backend_url=base)
        await sync_catalogue(world.operator, "acme", "unruly", True, EgressPolicy(allow_private=True))
        for tool in ("deep", "noop"):
            await world.operator.set_tool_default("acme", "unruly", tool, "always_allow")
        async with mcp_client(f"{front}/acme/unruly/mcp", world.keys["acme:member"], era) as client:
            # Bounded far above the milliseconds it takes, so a broken front fails instead of hanging.
            result = await asyncio.wait_for(client.call_tool("deep", {}), 60)
            assert not (await client.call_tool("noop", {})).is_error  # the front keeps serving
    assert result.is_error
    text = result.content[0].text  # type: ignore[union-attr]
    assert "without a JSON-RPC message" in text and "127.0.0.1" not in text
    async with world.client("acme:admin") as admin:
        rows = (await admin.query_audit("acme", toolkit="unruly", tool="deep", page_size=50)).records
    assert [r.status for r in rows if r.status != "started"] == ["backend_error"]
