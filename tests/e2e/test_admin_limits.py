"""The admin surface has the MCP endpoints' limits: bounded bodies, read deadlines, and
validation errors that neither echo the request nor fail on NaN."""

from __future__ import annotations

import asyncio

import httpx

from mcp_front.app import build_app
from policy_service.config import Settings
from tests.conftest import World
from tests.support.servers import serve_asgi


async def test_an_oversized_admin_body_is_refused_before_it_is_read(front: str) -> None:
    async with httpx.AsyncClient() as http:
        response = await http.post(
            f"{front}/api/v1/keys",
            content=b'{"name":"' + b"a" * 2_000_000 + b'"}',
            headers={"Content-Type": "application/json"},
        )
    assert response.status_code == 413 and len(response.content) < 1000


async def test_a_slow_admin_body_is_cut_off(settings: Settings, policy_addr: str) -> None:
    fast = settings.model_copy(update={"body_timeout_seconds": 0.5})
    async with serve_asgi(build_app(fast, policy_addr)) as base:
        host, port = base.removeprefix("http://").split(":")
        reader, writer = await asyncio.open_connection(host, int(port))
        writer.write(
            f"POST /api/v1/keys HTTP/1.1\r\nHost: {host}:{port}\r\nContent-Type: application/json\r\n".encode()
            + b"Content-Length: 100\r\n\r\n{"
        )
        await writer.drain()
        head = await asyncio.wait_for(reader.read(200), 10)
        writer.close()
    assert head.startswith(b"HTTP/1.1 408")


async def test_validation_errors_do_not_echo_input_and_survive_nan(world: World, front: str) -> None:
    admin = {"Authorization": f"Bearer {world.keys['acme:admin']}", "Content-Type": "application/json"}
    async with httpx.AsyncClient() as http:
        nan = await http.put(f"{front}/api/v1/permissions", content=b'{"toolkit": NaN}', headers=admin)
        echo = await http.post(f"{front}/api/v1/keys", content=b'{"name": ' + b"7" * 5000 + b"}", headers=admin)
    assert nan.status_code in (400, 422)
    assert echo.status_code in (400, 422) and b"7777777777" not in echo.content
