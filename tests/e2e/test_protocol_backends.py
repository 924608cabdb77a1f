"""Toward each backend the front speaks the version that backend negotiated: a `mcp` 1.x
backend (up to 2025-06-18) and a 2026-07-28-only backend both sync and run calls; a
backend's JSON-RPC error reaches the client with its code."""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest
from mcp.shared.exceptions import MCPError

from mcp_front.backends.catalogue_sync import sync_catalogue
from policy_service.toolkits.egress import EgressPolicy
from tests.conftest import World, mcp_client
from tests.support.era_backends import ErrorBackend, ModernOnlyBackend, OldBackend
from tests.support.servers import serve_asgi
from tests.support.upstream import Upstream

ALLOW_LOOPBACK = EgressPolicy(allow_private=True)


@pytest.fixture
async def old_backend() -> AsyncIterator[tuple[OldBackend, Upstream, str]]:
    upstream = Upstream()
    backend = OldBackend(upstream.app())
    async with serve_asgi(backend) as base:
        yield backend, upstream, f"{base}/mcp"


@pytest.fixture
async def modern_backend() -> AsyncIterator[tuple[ModernOnlyBackend, Upstream, str]]:
    upstream = Upstream()
    backend = ModernOnlyBackend(upstream.app())
    async with serve_asgi(backend) as base:
        yield backend, upstream, f"{base}/mcp"


async def _register(world: World, slug: str, url: str) -> None:
    await world.operator.upsert_toolkit("acme", slug, name=slug, visibility="private", backend_url=url)
    async with world.client("acme:admin") as admin:
        answer = await sync_catalogue(admin, "acme", slug, False, ALLOW_LOOPBACK)
    assert answer.added >= 5


async def test_a_2025_06_18_backend_syncs_and_runs_calls(
    world: World, front: str, old_backend: tuple[OldBackend, Upstream, str]
) -> None:
    backend, upstream, url = old_backend
    await _register(world, "old", url)
    async with mcp_client(f"{front}/acme/old/mcp", world.keys["acme:member"]) as client:
        result = await client.call_tool("echo", {"text": "hello"})
    assert not result.is_error and result.content[0].text == "hello"  # type: ignore[union-attr]
    assert upstream.calls["echo"] == 1
    assert set(backend.versions_seen) <= {None, "2025-06-18"}


async def test_a_2026_07_28_only_backend_syncs_and_runs_calls(
    world: World, front: str, modern_backend: tuple[ModernOnlyBackend, Upstream, str]
) -> None:
    backend, upstream, url = modern_backend
    await _register(world, "modern", url)
    for mode in ("legacy", "2026-07-28"):
        async with mcp_client(f"{front}/acme/modern/mcp", world.keys["acme:member"], mode=mode) as client:
            result = await client.call_tool("echo", {"text": mode})
        assert not result.is_error and result.structured_content == {"result": mode}
    assert upstream.calls["echo"] == 2
    # Refused once by the sync and once for the front's session, then the envelope era only.
    assert backend.methods.count("initialize") == 2


async def test_a_backend_json_rpc_error_keeps_its_code(world: World, front: str) -> None:
    upstream = Upstream()
    async with serve_asgi(ErrorBackend(upstream.app())) as base:
        url = f"{base}/mcp"
        await world.operator.upsert_toolkit("acme", "errs", name="errs", visibility="private", backend_url=url)
        strict = {"name": ErrorBackend.ERROR_TOOL, "input_schema_json": '{"type":"object"}'}
        await world.operator.sync_tools("acme", "errs", [{**strict, "default_permission": "always_allow"}])
        async with mcp_client(f"{front}/acme/errs/mcp", world.keys["acme:member"]) as client:
            with pytest.raises(MCPError) as caught:
                await client.call_tool(ErrorBackend.ERROR_TOOL, {"level": "medium"})
    error = caught.value.error
    assert (error.code, error.message, error.data) == tuple(ErrorBackend.ERROR.values())
    (completed,) = (await world.operator.query_audit("acme", toolkit="errs", status="backend_error")).records
    assert completed.tool == ErrorBackend.ERROR_TOOL
