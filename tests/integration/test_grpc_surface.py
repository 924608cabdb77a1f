"""What grpcurl and load balancers rely on: server reflection and standard health checks."""

from __future__ import annotations

import asyncio

import grpc
from grpc_health.v1 import health_pb2, health_pb2_grpc
from grpc_reflection.v1alpha.proto_reflection_descriptor_database import ProtoReflectionDescriptorDatabase

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
