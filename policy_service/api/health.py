"""gRPC health that means something: SERVING only while the database takes writes.

Load balancers and the front's `/readyz` ask the standard health service; a policy service
whose database is gone (or read-only, e.g. a Postgres replica after failover) must say so
instead of accepting calls it cannot audit.
"""

from __future__ import annotations

import asyncio
import logging

from grpc_health.v1 import health, health_pb2
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncEngine

from policy_service.observability.metrics import PolicyMetrics

log = logging.getLogger(__name__)


async def database_writable(engine: AsyncEngine, within: float = 2.0) -> bool:
    """True when a write transaction can start (and, on Postgres, the server is not a standby)."""

    async def probe() -> bool:
        async with engine.connect() as conn:
            if engine.dialect.name == "postgresql":
                return not bool((await conn.execute(text("SELECT pg_is_in_recovery()"))).scalar())
            await conn.execute(text("SELECT 1"))
            return True

    try:
        return await asyncio.wait_for(probe(), within)
    except Exception as exc:
        log.warning("database health probe failed: %s", exc)
        return False


class DatabaseHealth:
    """Keeps every registered service's health status in step with the database."""

    def __init__(
        self,
        servicer: health.aio.HealthServicer,
        engine: AsyncEngine,
        names: tuple[str, ...],
        metrics: PolicyMetrics | None = None,
    ) -> None:
        self._servicer = servicer
        self._metrics = metrics
        self._engine = engine
        self._names = names
        self.serving: bool | None = None

    async def check(self) -> bool:
        serving = await database_writable(self._engine)
        if self._metrics is not None:
            self._metrics.database_up.set(1 if serving else 0)
        if serving != self.serving:
            status = health_pb2.HealthCheckResponse.SERVING if serving else health_pb2.HealthCheckResponse.NOT_SERVING
            for name in self._names:
                await self._servicer.set(name, status)
            if self.serving is not None:
                log.warning("policy service is now %s", "serving" if serving else "NOT serving (database)")
            self.serving = serving
        return serving

    async def run(self, interval: float) -> None:
        while True:
            await self.check()
            await asyncio.sleep(interval)
