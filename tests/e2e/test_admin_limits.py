"""The admin surface has the MCP endpoints' limits: bounded bodies, read deadlines, and
validation errors that neither echo the request nor fail on NaN."""

from __future__ import annotations

import asyncio
import secrets

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


async def test_admin_requests_share_the_keys_rate_limit(world: World, settings: Settings, policy_addr: str) -> None:
    """One admin key (a script, a leaked key) could send the REST API unbounded work for the
    shared policy service and database; now its requests count against its key's budget,
    the same one its MCP calls use, and another key is not affected."""
    tight = settings.model_copy(update={"rate_limit_per_second": 0.001, "rate_limit_burst": 3})
    admin = {"Authorization": f"Bearer {world.keys['acme:admin']}"}
    async with serve_asgi(build_app(tight, policy_addr)) as base, httpx.AsyncClient() as http:
        statuses = [(await http.get(f"{base}/api/v1/whoami", headers=admin)).status_code for _ in range(5)]
        limited = await http.get(f"{base}/api/v1/audit", headers=admin)
        other = await http.get(
            f"{base}/api/v1/whoami", headers={"Authorization": f"Bearer {world.keys['globex:admin']}"}
        )
        sign_in_page = await http.get(f"{base}/console/login")
    assert statuses == [200, 200, 200, 429, 429]
    assert limited.status_code == 429 and int(limited.headers["Retry-After"]) >= 1
    assert limited.json()["detail"]["reason"] == "RATE_LIMITED"
    assert other.status_code == 200 and sign_in_page.status_code == 200


async def test_inventing_bearers_on_the_admin_api_is_limited_by_address(settings: Settings, policy_addr: str) -> None:
    """Scanner: a fresh bogus bearer per request never meets a per-key limit; the address's
    failed-credential budget (the MCP endpoints' one) stops it."""
    strict = settings.model_copy(update={"auth_failures_per_second": 0.001, "auth_failure_burst": 5})
    async with serve_asgi(build_app(strict, policy_addr)) as base, httpx.AsyncClient() as http:
        statuses = []
        for _ in range(12):
            bogus = {"Authorization": f"Bearer mmcp_{secrets.token_hex(27)}"}
            statuses.append((await http.get(f"{base}/api/v1/whoami", headers=bogus)).status_code)
    assert statuses[:5] == [401] * 5 and statuses[-6:] == [429] * 6
