"""SSRF: toolkit backends are reached only where the operator's egress policy allows,
when a toolkit is saved, when the front calls it and when its catalogue is synced."""

from __future__ import annotations

from collections.abc import AsyncIterator

import httpx2
import pytest

from mcp_front.app import build_app
from policy_service import errors
from policy_service.api.server import start
from policy_service.client import PolicyClient
from policy_service.config import Settings
from tests.conftest import OPERATOR, World, make_settings, mcp_client
from tests.support.servers import free_port, serve_asgi
from tests.support.upstream import Upstream


@pytest.fixture
async def strict_front(settings: Settings, policy_addr: str, service_token: str) -> AsyncIterator[str]:
    """A front with the production default (no internal backends) in front of a policy
    service that let the toolkits be saved: a toolkit stored before the policy tightened,
    or a name that resolved elsewhere when it was saved."""
    port = free_port()
    strict = settings.model_copy(
        update={
            "public_url": f"http://127.0.0.1:{port}",
            "backend_allow_private": False,
            "service_token": service_token,
        }
    )
    async with serve_asgi(build_app(strict, policy_addr), port) as base:
        yield base


async def test_an_admin_cannot_save_a_toolkit_pointing_at_an_internal_address(
    database_url: str, upstream: tuple[Upstream, str]
) -> None:
    backend, url = upstream
    port = url.split(":")[2].split("/")[0]
    server = await start(make_settings(database_url, MONOMCP_BACKEND_ALLOW_PRIVATE=False), "127.0.0.1:0")
    addr = f"127.0.0.1:{server.port}"
    try:
        async with PolicyClient(addr, OPERATOR) as operator:
            await operator.create_org("acme", "Acme")
            admin_key = (await operator.create_api_key("acme", "admin", "admin")).secret
        async with PolicyClient(addr, admin_key) as admin:
            for internal in (
                url,
                f"http://localhost:{port}/mcp",
                f"http://[::1]:{port}/mcp",
                "http://169.254.169.254/latest/meta-data/",
                "http://10.0.0.5/mcp",
                "http://0.0.0.0:8080/mcp",
            ):
                with pytest.raises(errors.InvalidArgument) as caught:
                    await admin.upsert_toolkit("acme", "internal", backend_url=internal)
                assert caught.value.reason == "BACKEND_NOT_ALLOWED", internal
            with pytest.raises(errors.NotFound):
                await admin.get_toolkit("acme", "internal")  # nothing was stored
            saved = await admin.upsert_toolkit("acme", "public", backend_url="https://93.184.216.34/mcp")
            assert saved.backend_url == "https://93.184.216.34/mcp"
    finally:
        await server.stop(0.5)
    assert backend.requests == []


async def test_the_front_refuses_to_call_an_internal_backend(world: World, strict_front: str) -> None:
    async with mcp_client(f"{strict_front}/acme/tools/mcp", world.keys["acme:member"]) as client:
        result = await client.call_tool("echo", {"text": "secret from the internal service"})
    text = result.content[0].text  # type: ignore[union-attr]
    assert result.is_error and "not allowed" in text
    assert "127.0.0.1" not in text  # the client is not told where the backend is
    assert world.upstream.requests == []  # nothing reached the internal service
    audit = await world.operator.query_audit("acme", tool="echo")
    assert [r.status for r in audit.records] == ["backend_error"]
    assert "127.0.0.1" in audit.records[0].error  # the audit row keeps the detail


async def test_a_catalogue_sync_through_the_front_refuses_an_internal_backend(world: World, strict_front: str) -> None:
    async with httpx2.AsyncClient(base_url=strict_front, timeout=30) as http:
        answer = await http.post(
            "/api/v1/toolkits/acme/tools/sync", headers={"Authorization": f"Bearer {world.keys['acme:admin']}"}
        )
    assert answer.status_code == 502
    assert "not allowed" in answer.text and "127.0.0.1" not in answer.text
    assert world.upstream.requests == []
