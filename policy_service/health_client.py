"""`/readyz` for the front: ready only while the policy service answers the standard gRPC
health check. A gRPC client of the policy service, so it lives beside the policy client."""

from __future__ import annotations

import grpc
from grpc_health.v1 import health_pb2, health_pb2_grpc


class PolicyReadiness:
    def __init__(
        self, policy_addr: str, tls: grpc.ChannelCredentials | None = None, timeout_seconds: float = 1.0
    ) -> None:
        self._addr = policy_addr
        self._tls = tls
        self._timeout = timeout_seconds
        self._channel: grpc.aio.Channel | None = None
        self._stub: health_pb2_grpc.HealthStub | None = None

    async def ready(self) -> bool:
        if self._stub is None:
            # grpc.aio channels bind to the running loop, so create on first use.
            self._channel = (
                grpc.aio.secure_channel(self._addr, self._tls)
                if self._tls is not None
                else grpc.aio.insecure_channel(self._addr)
            )
            self._stub = health_pb2_grpc.HealthStub(self._channel)
        try:
            response = await self._stub.Check(health_pb2.HealthCheckRequest(service=""), timeout=self._timeout)
        except grpc.aio.AioRpcError:
            return False
        return bool(response.status == health_pb2.HealthCheckResponse.SERVING)

    async def close(self) -> None:
        if self._channel is not None:
            await self._channel.close()
            self._channel, self._stub = None, None
