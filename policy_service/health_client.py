"""`/readyz` for the front: ready while the policy service answers the standard gRPC health
check SERVING at one or more of the addresses the front's policy client uses.

`MONOMCP_POLICY_ADDR` may stand for several replicas (an `ipv4:a,b` list, or a `dns:` name
with several addresses). The client spreads its calls over every address that connects and
leaves out one that does not, so the front can serve while any replica serves: each address
is resolved as the client resolves it (`stream_pool.resolve`), asked on its own channel, and
the first SERVING answer makes the front ready. A replica that hangs or refuses does not take
every front out of its load balancer; a replica's own health is its own probe's business.
A gRPC client of the policy service, so it lives beside the policy client.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable

import grpc
from grpc_health.v1 import health_pb2, health_pb2_grpc

from policy_service.stream_pool import resolve


class PolicyReadiness:
    """`opener` opens a channel to one resolved address with the client's TLS
    (`RpcChannel.open_target`)."""

    def __init__(
        self, policy_addr: str, opener: Callable[[str], grpc.aio.Channel], timeout_seconds: float = 1.0
    ) -> None:
        self._addr = policy_addr
        self._opener = opener
        self._timeout = timeout_seconds
        self._channels: dict[str, tuple[grpc.aio.Channel, health_pb2_grpc.HealthStub]] = {}

    async def ready(self) -> bool:
        targets = await resolve(self._addr)
        for gone in set(self._channels) - set(targets):
            await self._channels.pop(gone)[0].close()
        checks = [asyncio.ensure_future(self._serving(target)) for target in targets]
        try:
            for answer in asyncio.as_completed(checks):
                if await answer:
                    return True
            return False
        finally:
            for check in checks:
                check.cancel()

    async def _serving(self, target: str) -> bool:
        if target not in self._channels:
            # grpc.aio channels bind to the running loop, so open on first use.
            channel = self._opener(target)
            self._channels[target] = (channel, health_pb2_grpc.HealthStub(channel))
        stub = self._channels[target][1]
        try:
            response = await stub.Check(health_pb2.HealthCheckRequest(service=""), timeout=self._timeout)
        except grpc.aio.AioRpcError:
            return False
        return bool(response.status == health_pb2.HealthCheckResponse.SERVING)

    async def close(self) -> None:
        channels, self._channels = self._channels, {}
        for channel, _ in channels.values():
            await channel.close()
