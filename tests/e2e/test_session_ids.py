"""`Mcp-Session-Id` through the real gateway (docs/adr/0030-session-ids-and-long-streams.md):
issued at an initialize-era `initialize`, accepted by any replica sharing the request-state
key, and answered like an ended session (404) when shown by another credential, on another
toolkit, or forged; DELETE is 405 (a stateless gateway cannot end an id it did not store)."""

from __future__ import annotations

from typing import Any

import httpx

from mcp_front.app import build_app
from policy_service.config import Settings
from tests.conftest import World, mcp_client
from tests.support.servers import free_port, serve_asgi

INIT = {
    "jsonrpc": "2.0",
    "id": 1,
    "method": "initialize",
    "params": {"protocolVersion": "2025-11-25", "capabilities": {}, "clientInfo": {"name": "t", "version": "1"}},
}
PING = {"jsonrpc": "2.0", "id": 2, "method": "ping"}
ACCEPT = "application/json, text/event-stream"


def _headers(key: str, session: str | None = None, version: str = "2025-11-25") -> dict[str, str]:
    found = {"Authorization": f"Bearer {key}", "Accept": ACCEPT, "MCP-Protocol-Version": version}
    return found | ({"Mcp-Session-Id": session} if session else {})


async def _ping(http: httpx.AsyncClient, url: str, headers: dict[str, str]) -> httpx.Response:
    return await http.post(url, json=PING, headers=headers)


async def test_a_session_id_is_bound_to_its_credential_and_toolkit(world: World, settings: Settings) -> None:
    shared = {"service_token": world.service_token, "request_state_key": "k" * 32}
    ports = free_port(), free_port()
    apps = [
        build_app(settings.model_copy(update={"public_url": f"http://127.0.0.1:{p}", **shared}), world.policy_addr)
        for p in ports
    ]
    member, admin = world.keys["acme:member"], world.keys["acme:admin"]
    async with serve_asgi(apps[0], ports[0]) as a, serve_asgi(apps[1], ports[1]) as b:
        url, other_replica = f"{a}/acme/tools/mcp", f"{b}/acme/tools/mcp"
        async with httpx.AsyncClient() as http:
            init = await http.post(url, json=INIT, headers={"Authorization": f"Bearer {member}", "Accept": ACCEPT})
            session = init.headers["mcp-session-id"]
            modern: dict[str, Any] = {**INIT, "params": {**INIT["params"], "protocolVersion": "2026-07-28"}}
            counter_offered = await http.post(url, json=modern, headers=_headers(member, version="2025-11-25"))
            same = await _ping(http, url, _headers(member, session))
            elsewhere = await _ping(http, other_replica, _headers(member, session))
            without = await _ping(http, url, _headers(member))
            stolen = await _ping(http, url, _headers(admin, session))
            other_toolkit = await _ping(http, f"{a}/acme/shared/mcp", _headers(member, session))
            forged = await _ping(http, url, _headers(member, session[:-2] + "AA"))
            other_version = await _ping(http, url, _headers(member, session, "2025-06-18"))
            deleted = await http.delete(url, headers=_headers(member, session))
            after_delete = await _ping(http, url, _headers(member, session))
    assert init.status_code == 200 and init.json()["result"]["protocolVersion"] == "2025-11-25"
    assert all(c in "".join(chr(i) for i in range(0x21, 0x7F)) for c in session)  # visible ASCII (spec)
    assert counter_offered.status_code == 200 and "mcp-session-id" in counter_offered.headers
    for answer in (same, elsewhere, without, after_delete):
        assert answer.status_code == 200 and answer.json()["result"] == {}, answer.text
    for refused in (stolen, other_toolkit, forged):
        assert refused.status_code == 404 and refused.json()["error"]["message"] == "Session not found"
    assert other_version.status_code == 400
    assert deleted.status_code == 405


async def test_no_session_id_for_2026_requests_and_sdk_clients_of_both_eras_work(world: World, front: str) -> None:
    key = world.keys["acme:member"]
    async with httpx.AsyncClient() as http:
        discovered = await http.post(
            f"{front}/acme/tools/mcp",
            json={"jsonrpc": "2.0", "id": 1, "method": "server/discover", "params": {}},
            headers=_headers(key, version="2026-07-28"),
        )
    assert "mcp-session-id" not in discovered.headers
    for mode in ("legacy", "2026-07-28"):
        async with mcp_client(f"{front}/acme/tools/mcp", key, mode) as client:
            assert (await client.list_tools()).tools
