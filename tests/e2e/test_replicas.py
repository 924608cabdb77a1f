"""Two policy services and two fronts on one database: any replica serves any step."""

from __future__ import annotations

import asyncio
import contextlib
import uuid
from collections.abc import AsyncIterator
from dataclasses import dataclass
from typing import Any

import httpx
import pytest

from mcp_front.app import FrontApp, build_app
from policy_service.api.server import PolicyServer, start
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


# --- The production shape: two fronts and two policy services on one Postgres, with the
# per-key limits in Redis. Each front balances its gRPC calls over both policy replicas
# (round robin over every address of its target), as it does behind a DNS name.

REDIS_URL = "redis://127.0.0.1:6379/0"
CALL = {"jsonrpc": "2.0", "id": 1, "method": "tools/call", "params": {"name": "echo", "arguments": {"text": "hi"}}}


@dataclass
class Replicas:
    policies: list[PolicyServer]
    apps: list[FrontApp]
    fronts: list[str]
    policy_addrs: list[str]


async def _redis_or_skip() -> None:
    from redis.asyncio import Redis

    client = Redis.from_url(REDIS_URL)
    try:
        await client.ping()
    except OSError:
        pytest.skip("no Redis at 127.0.0.1:6379")
    finally:
        await client.aclose()


@contextlib.asynccontextmanager
async def replica_set(world: World, settings: Settings, first: PolicyServer, **front: Any) -> AsyncIterator[Replicas]:
    if not settings.database_url.startswith("postgresql"):
        pytest.skip("replicas share one Postgres (SQLite is one process's database)")
    await _redis_or_skip()
    # The world's 2 s backend timeout is for the timeout tests. Here one event loop runs two
    # policy services, two fronts and the backend (a front's first call also opens its backend
    # session): on a busy box a call took longer than 2 s, ended `timeout` (HTTP 200 carrying
    # a tool error) and the spread came out one short.
    await world.operator.upsert_toolkit(
        "acme", "tools", name="tools", visibility="private", backend_url=world.upstream_url, backend_timeout_seconds=30
    )
    production_cache = {"cache_ttl_seconds": 0.5}
    second = await start(settings.model_copy(update=production_cache), "127.0.0.1:0")
    try:
        addrs = [world.policy_addr, f"127.0.0.1:{second.port}"]
        both = "ipv4:" + ",".join(addrs)
        ports = [free_port(), free_port()]
        apps = [
            build_app(
                settings.model_copy(
                    update={
                        **production_cache,
                        "public_url": f"http://127.0.0.1:{port}",
                        "service_token": world.service_token,
                        "redis_url": REDIS_URL,
                        **front,
                    }
                ),
                both,
            )
            for port in ports
        ]
        async with serve_asgi(apps[0], ports[0]) as front_a, serve_asgi(apps[1], ports[1]) as front_b:
            yield Replicas([first, second], apps, [front_a, front_b], addrs)
    finally:
        await second.stop(0.5)


async def _call(http: httpx.AsyncClient, base: str, token: str) -> httpx.Response:
    headers = {"Authorization": f"Bearer {token}", "Accept": "application/json, text/event-stream"}
    return await http.post(f"{base}/acme/tools/mcp", headers=headers, json=CALL)


def _ran(answer: httpx.Response) -> bool:
    """HTTP 200 carrying the tool's own result (a timeout or a refusal is a 200 too)."""
    if answer.status_code != 200:
        return False
    result = answer.json().get("result")
    return isinstance(result, dict) and not result.get("isError")


def _authorized(server: PolicyServer) -> float:
    labels = {"method": "AuthorizeToolCall", "code": "OK"}
    return server.metrics.registry.get_sample_value("monomcp_policy_rpc_seconds_count", labels) or 0.0


def _front_calls(app: FrontApp) -> float:
    labels = {"org": "acme", "toolkit": "tools", "decision": "allow", "status": "ok"}
    return app.metrics.registry.get_sample_value("monomcp_front_tool_calls_total", labels) or 0.0


async def test_calls_spread_over_every_front_and_policy_replica(
    world: World, settings: Settings, policy: PolicyServer
) -> None:
    async with replica_set(world, settings, policy) as replicas, httpx.AsyncClient(timeout=30) as http:
        answers = [await _call(http, base, world.keys["acme:member"]) for base in replicas.fronts * 10]
        assert [r.text for r in answers if not _ran(r)] == []
        assert [_front_calls(app) for app in replicas.apps] == [10, 10]
        assert all(_authorized(server) > 0 for server in replicas.policies)
        assert sum(_authorized(server) for server in replicas.policies) == 20
    assert world.upstream.calls["echo"] == 20


async def test_an_approval_decided_on_one_replica_runs_once_through_the_other(
    world: World, settings: Settings, policy: PolicyServer
) -> None:
    member = world.keys["acme:member"]
    async with replica_set(world, settings, policy) as replicas:
        front_a, front_b = replicas.fronts
        async with mcp_client(f"{front_a}/acme/tools/mcp", member) as via_a:
            pending = await via_a.call_tool("transfer", ARGS)
        approval_id = pending.meta["monomcp/approval"]["id"]  # type: ignore[index]
        async with PolicyClient(replicas.policy_addrs[1], world.keys["acme:admin"]) as admin_on_second:
            await admin_on_second.decide_approval(approval_id, approve=True)
        async with (
            mcp_client(f"{front_a}/acme/tools/mcp", member) as via_a,
            mcp_client(f"{front_b}/acme/tools/mcp", member) as via_b,
        ):
            results = await asyncio.gather(*(c.call_tool("transfer", ARGS) for c in [via_b, via_a] * 5))
    assert sum(1 for r in results if not r.is_error) == 1
    assert world.upstream.calls["transfer"] == 1


async def test_a_key_revoked_on_one_replica_is_refused_by_the_others_within_a_second(
    world: World, settings: Settings, policy: PolicyServer
) -> None:
    key = await world.operator.create_api_key("acme", f"revoke-{uuid.uuid4().hex[:6]}", "member")
    async with replica_set(world, settings, policy) as replicas, httpx.AsyncClient(timeout=30) as http:
        for base in replicas.fronts * 2:  # every front and policy replica has it cached
            assert (await _call(http, base, key.secret)).status_code == 200
        async with PolicyClient(replicas.policy_addrs[0], world.keys["acme:admin"]) as admin_on_first:
            await admin_on_first.revoke_api_key("acme", key.key.id)
        await asyncio.sleep(1.0)
        refused = [await _call(http, base, key.secret) for base in replicas.fronts * 2]
    assert [r.status_code for r in refused] == [401] * 4
    assert world.upstream.calls["echo"] == 4


async def test_the_per_key_rate_limit_is_shared_by_the_fronts_through_redis(
    world: World, settings: Settings, policy: PolicyServer
) -> None:
    key = await world.operator.create_api_key("acme", f"limited-{uuid.uuid4().hex[:6]}", "member")
    limits = {"rate_limit_per_second": 0.001, "rate_limit_burst": 3}
    async with replica_set(world, settings, policy, **limits) as replicas, httpx.AsyncClient(timeout=30) as http:
        statuses = [(await _call(http, base, key.secret)).status_code for base in replicas.fronts * 3]
    # Three in all, not three per front: the bucket lives in Redis.
    assert statuses == [200, 200, 200, 429, 429, 429]
