"""What grpcurl and load balancers rely on: server reflection and standard health checks."""

from __future__ import annotations

import asyncio

import asyncpg
import grpc
import pytest
from grpc_health.v1 import health_pb2, health_pb2_grpc
from grpc_reflection.v1alpha.proto_reflection_descriptor_database import ProtoReflectionDescriptorDatabase
from sqlalchemy.engine import make_url

from policy_service.config import Settings
from policy_service.storage.database import is_sqlite
from tests.conftest import World


def _reflect(address: str) -> tuple[set[str], set[str]]:
    with grpc.insecure_channel(address) as channel:
        database = ProtoReflectionDescriptorDatabase(channel)
        services = set(database.get_services())
        described = database.FindFileContainingSymbol("monomcp.policy.v1.PolicyService")
        return services, {m.name for m in described.service[0].method}


async def test_reflection_lists_and_describes_the_services(world: World) -> None:
    # The reflection helper is synchronous: run it off the loop that serves the policy service.
    services, methods = await asyncio.to_thread(_reflect, world.policy_addr)
    assert {"monomcp.policy.v1.PolicyService", "monomcp.policy.v1.AdminService"} <= services
    assert "AuthorizeToolCall" in methods


async def test_health_reports_serving(world: World) -> None:
    async with grpc.aio.insecure_channel(world.policy_addr) as channel:
        stub = health_pb2_grpc.HealthStub(channel)
        for service in ("", "monomcp.policy.v1.PolicyService"):
            response = await stub.Check(health_pb2.HealthCheckRequest(service=service))
            assert response.status == health_pb2.HealthCheckResponse.SERVING


async def _status(address: str) -> int:
    async with grpc.aio.insecure_channel(address) as channel:
        response = await health_pb2_grpc.HealthStub(channel).Check(health_pb2.HealthCheckRequest(service=""))
        return int(response.status)


async def test_health_follows_the_database(world: World, settings: Settings) -> None:
    if is_sqlite(settings.database_url):
        pytest.skip("a Postgres outage is simulated by refusing connections to the database")
    database = make_url(settings.database_url).database
    admin = await asyncpg.connect(host="127.0.0.1", user="postgres", database="postgres")
    serving, not_serving = health_pb2.HealthCheckResponse.SERVING, health_pb2.HealthCheckResponse.NOT_SERVING
    try:
        await admin.execute(f'ALTER DATABASE "{database}" ALLOW_CONNECTIONS false')
        await admin.execute(
            "SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE datname = $1 AND pid <> pg_backend_pid()",
            database,
        )
        assert await _eventually(world.policy_addr, not_serving)
    finally:
        await admin.execute(f'ALTER DATABASE "{database}" ALLOW_CONNECTIONS true')
        await admin.close()
    assert await _eventually(world.policy_addr, serving)


async def _eventually(address: str, status: int) -> bool:
    for _ in range(100):
        if await _status(address) == status:
            return True
        await asyncio.sleep(0.1)
    return False
