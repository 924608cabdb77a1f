"""Two policy services and two fronts on one database: any replica serves any step."""

from __future__ import annotations

import asyncio

from mcp_front.app import build_app
from policy_service.api.server import start
from policy_service.client import PolicyClient
from policy_service.config import Settings
from tests.conftest import World, mcp_client
from tests.support.servers import free_port, serve_asgi

ARGS = {"amount": 3, "to": "dave"}


async def test_approval_created_on_one_replica_decided_and_run_on_others(world: World, settings: Settings) -> None:
    second_policy = await start(settings.model_copy(update={"cache_ttl_seconds": 0.5}), "127.0.0.1:0")
    try:
        second_addr = f"127.0.0.1:{second_policy.port}"
        port_a, port_b = free_port(), free_port()
        app_a = build_app(
            settings.model_copy(
                update={"public_url": f"http://127.0.0.1:{port_a}", "service_token": world.service_token}
            ),
            world.policy_addr,
        )
        app_b = build_app(
            settings.model_copy(
                update={"public_url": f"http://127.0.0.1:{port_b}", "service_token": world.service_token}
            ),
            second_addr,
        )
        async with serve_asgi(app_a, port_a) as front_a, serve_asgi(app_b, port_b) as front_b:
            async with mcp_client(f"{front_a}/acme/tools/mcp", world.keys["acme:member"]) as via_a:
                first = await via_a.call_tool("transfer", ARGS)
            approval_id = first.meta["monomcp/approval"]["id"]  # type: ignore[index]
            async with mcp_client(f"{front_b}/acme/tools/mcp", world.keys["acme:member"]) as via_b:
                again = await via_b.call_tool("transfer", ARGS)
                assert again.meta["monomcp/approval"]["id"] == approval_id  # type: ignore[index]
            async with PolicyClient(second_addr, world.keys["acme:admin"]) as admin_on_b:
                await admin_on_b.decide_approval(approval_id, approve=True)
            async with (
                mcp_client(f"{front_a}/acme/tools/mcp", world.keys["acme:member"]) as via_a,
                mcp_client(f"{front_b}/acme/tools/mcp", world.keys["acme:member"]) as via_b,
            ):
                results = await asyncio.gather(*(client.call_tool("transfer", ARGS) for client in [via_a, via_b] * 10))
        assert sum(1 for r in results if not r.is_error) == 1
        assert world.upstream.calls["transfer"] == 1
    finally:
        await second_policy.stop(0.5)


async def test_revocation_reaches_other_replicas_within_a_second(world: World, settings: Settings) -> None:
    second_policy = await start(settings.model_copy(update={"cache_ttl_seconds": 0.5}), "127.0.0.1:0")
    try:
        second_addr = f"127.0.0.1:{second_policy.port}"
        key = await world.operator.create_api_key("acme", "to revoke", "member")
        async with PolicyClient(second_addr, service_token=world.service_token) as other:
            await other.list_tools(key.secret, "acme", "tools")  # warm the second replica's cache
            await world.operator.revoke_api_key("acme", key.key.id)  # revoked via the first replica
            await asyncio.sleep(1.0)
            try:
                await other.list_tools(key.secret, "acme", "tools")
            except Exception as exc:
                assert type(exc).__name__ == "Unauthenticated"
            else:
                raise AssertionError("revoked key still accepted by another replica after 1 s")
    finally:
        await second_policy.stop(0.5)
