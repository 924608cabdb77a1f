"""Fail closed: bad input and a missing policy service never run a tool."""

from __future__ import annotations

import httpx
import pytest

from mcp_front.app import build_app
from policy_service.config import Settings
from tests.conftest import World, mcp_client
from tests.support.servers import free_port, serve_asgi

ACCEPT = {"Accept": "application/json, text/event-stream"}


async def test_policy_service_down_runs_nothing(world: World, settings: Settings) -> None:
    dead = f"127.0.0.1:{free_port()}"
    async with serve_asgi(build_app(settings.model_copy(update={"policy_timeout_seconds": 1.0}), dead)) as base:
        async with httpx.AsyncClient() as http:
            response = await http.post(
                f"{base}/acme/tools/mcp",
                headers={"Authorization": f"Bearer {world.keys['acme:member']}", **ACCEPT},
                json={
                    "jsonrpc": "2.0",
                    "id": 1,
                    "method": "tools/call",
                    "params": {"name": "echo", "arguments": {"text": "x"}},
                },
            )
    assert response.status_code == 503
    assert "not run" in response.json()["error"]["message"]
    assert world.upstream.calls["echo"] == 0


async def test_policy_failure_between_list_and_call_fails_closed(world: World, front: str, policy) -> None:  # type: ignore[no-untyped-def]
    async with mcp_client(f"{front}/acme/tools/mcp", world.keys["acme:member"]) as client:
        await client.list_tools()
        await policy.server.stop(0)
        from mcp.shared.exceptions import MCPError

        with pytest.raises(MCPError):
            await client.call_tool("echo", {"text": "x"})
    assert world.upstream.calls["echo"] == 0


@pytest.mark.parametrize(
    ("body", "status"),
    [
        (b"{not json", 400),
        (b'{"jsonrpc": "2.0", "id": 1}', 400),
        (b"[1, 2, 3]", 400),
    ],
)
async def test_malformed_json_rpc_gets_a_clear_error(world: World, front: str, body: bytes, status: int) -> None:
    async with httpx.AsyncClient() as http:
        response = await http.post(
            f"{front}/acme/tools/mcp",
            content=body,
            headers={
                "Authorization": f"Bearer {world.keys['acme:member']}",
                "Content-Type": "application/json",
                **ACCEPT,
            },
        )
        assert response.status_code == status
        assert "error" in response.json()
        ok = await http.post(
            f"{front}/acme/tools/mcp",
            json={"jsonrpc": "2.0", "id": 2, "method": "ping"},
            headers={"Authorization": f"Bearer {world.keys['acme:member']}", **ACCEPT},
        )
    assert ok.status_code == 200  # the process keeps serving


async def test_oversized_body_is_413(world: World, front: str, settings: Settings) -> None:
    async with httpx.AsyncClient() as http:
        response = await http.post(
            f"{front}/acme/tools/mcp",
            content=b"x" * (settings.max_body_bytes + 1),
            headers={
                "Authorization": f"Bearer {world.keys['acme:member']}",
                "Content-Type": "application/json",
                **ACCEPT,
            },
        )
    assert response.status_code == 413


async def test_probes_answer_cleanly(world: World, front: str) -> None:
    auth = {"Authorization": f"Bearer {world.keys['acme:member']}"}
    async with httpx.AsyncClient() as http:
        sse = {**auth, "Accept": "text/event-stream"}
        async with http.stream("GET", f"{front}/acme/tools/mcp", headers=sse) as get:
            pass  # the standalone stream opens at once (docs/adr/0025); the probe leaves it
        delete = await http.delete(f"{front}/acme/tools/mcp", headers=auth)
        wk = await http.get(f"{front}/.well-known/oauth-protected-resource/acme/tools/mcp")
        wk2 = await http.get(f"{front}/.well-known/oauth-authorization-server")
        rebinding = await http.post(
            f"{front}/acme/tools/mcp",
            headers={**auth, **ACCEPT, "Host": "evil.example"},
            json={"jsonrpc": "2.0", "id": 1, "method": "ping"},
        )
        bad_slug = await http.post(f"{front}/ACME/../mcp", headers={**auth, **ACCEPT}, json={})
    assert get.status_code == 200 and get.headers["content-type"] == "text/event-stream"
    assert delete.status_code == 405 and delete.headers["allow"] == "GET, POST"
    assert wk.status_code == wk2.status_code == 404 and wk.json() == {"error": "not_found"}
    assert rebinding.status_code == 421
    assert bad_slug.status_code == 404
