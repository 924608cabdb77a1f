"""HTTP-level refusals are audited, leave clean logs, and readiness follows the policy service."""

from __future__ import annotations

import asyncio
import logging
from typing import Any

import httpx
import pytest

from mcp_front.app import build_app
from policy_service.api.server import PolicyServer
from policy_service.config import Settings
from tests.conftest import World
from tests.support.servers import free_port, serve_asgi

ACCEPT = {"Accept": "application/json, text/event-stream"}
PING = {"jsonrpc": "2.0", "id": 1, "method": "ping"}


async def _statuses(world: World) -> list[tuple[str, str]]:
    records = (await world.operator.query_audit("", toolkit="tools", page_size=200)).records
    return sorted((r.status, r.error) for r in records)


async def test_http_rejections_are_audited(world: World, front: str) -> None:
    auth = {"Authorization": f"Bearer {world.keys['acme:member']}"}
    url = f"{front}/acme/tools/mcp"
    async with httpx.AsyncClient() as http:
        wrong_method = await http.delete(url, headers=auth)
        not_acceptable = await http.post(url, headers={**auth, "Accept": "text/html"}, json=PING)
        bad_host = await http.post(url, headers={**auth, **ACCEPT, "Host": "evil.example"}, json=PING)
        bad_origin = await http.post(url, headers={**auth, **ACCEPT, "Origin": "http://evil.example"}, json=PING)
        wrong_type = await http.post(url, headers={**auth, **ACCEPT, "Content-Type": "text/plain"}, content=b"{}")
    assert [wrong_method.status_code, not_acceptable.status_code, bad_host.status_code] == [405, 406, 421]
    assert [bad_origin.status_code, wrong_type.status_code] == [403, 400]
    assert await _statuses(world) == [
        ("forbidden", "invalid Host header"),
        ("forbidden", "invalid Origin header"),
        ("invalid", "Content-Type must be application/json"),
        ("invalid", "method DELETE not allowed"),
        ("invalid", "not acceptable: the client must accept application/json"),
    ]


async def test_control_characters_in_path_cannot_forge_log_lines(
    world: World, front: str, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO, logger="monomcp.front")
    host, port = front.removeprefix("http://").split(":")
    reader, writer = await asyncio.open_connection(host, int(port))
    path = "/x%0d%0aINFO%20forged%20line%1b[31m"
    writer.write(f"GET {path} HTTP/1.1\r\nHost: {host}:{port}\r\nConnection: close\r\n\r\n".encode())
    await writer.drain()
    assert b" 404 " in await reader.read()
    writer.close()
    lines = [r.getMessage() for r in caplog.records if r.getMessage().startswith("http ")]
    assert len(lines) == 1
    assert "\r" not in lines[0] and "\n" not in lines[0] and "\x1b" not in lines[0]
    assert "\\u000d\\u000aINFO forged line\\u001b[31m" in lines[0]


async def test_client_leaving_mid_body_logs_no_traceback(
    world: World, front: str, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO)
    host, port = front.removeprefix("http://").split(":")
    _, writer = await asyncio.open_connection(host, int(port))
    head = (
        f"POST /acme/tools/mcp HTTP/1.1\r\nHost: {host}:{port}\r\n"
        f"Authorization: Bearer {world.keys['acme:member']}\r\n"
        "Content-Type: application/json\r\nAccept: application/json\r\nContent-Length: 1000\r\n\r\n"
    )
    writer.write(head.encode() + b'{"jsonrpc"')
    await writer.drain()
    writer.close()
    for _ in range(200):  # the refusal is audited once the front notices the client left
        if ("invalid", "client disconnected before sending the whole body") in await _statuses(world):
            break
        await asyncio.sleep(0.05)
    assert ("invalid", "client disconnected before sending the whole body") in await _statuses(world)
    assert not [r for r in caplog.records if r.exc_info or r.levelno >= logging.ERROR]


async def test_readyz_follows_the_policy_service(
    world: World, settings: Settings, policy: PolicyServer, policy_addr: str
) -> None:
    fast: dict[str, Any] = {"policy_timeout_seconds": 1.0}
    async with serve_asgi(build_app(settings.model_copy(update=fast), policy_addr)) as base:
        async with httpx.AsyncClient() as http:
            ready = await http.get(f"{base}/readyz")
            await policy.server.stop(0)
            down = await http.get(f"{base}/readyz")
            alive = await http.get(f"{base}/healthz")
    assert ready.status_code == 200
    assert down.status_code == 503 and alive.status_code == 200
    dead = f"127.0.0.1:{free_port()}"
    async with serve_asgi(build_app(settings, dead)) as base, httpx.AsyncClient() as http:
        assert (await http.get(f"{base}/readyz")).status_code == 503
