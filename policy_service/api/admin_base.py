"""What every admin RPC group shares: the caller's principal and a database session."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

import grpc
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from policy_service.approvals.store import TTLs
from policy_service.approvals.watch import ApprovalWatcher
from policy_service.audit.digests import AuditDigester
from policy_service.errors import Unauthenticated
from policy_service.gate import Gate
from policy_service.identity.principal import Principal


class AdminBase:
    def __init__(
        self,
        sessions: async_sessionmaker[AsyncSession],
        gate: Gate,
        ttls: TTLs,
        watcher: ApprovalWatcher,
        digester: AuditDigester,
    ) -> None:
        self._sessions = sessions
        self._gate = gate
        self._ttls = ttls
        self._watcher = watcher
        self._digester = digester

    async def _principal(self, context: grpc.aio.ServicerContext) -> Principal:
        for key, value in context.invocation_metadata() or ():
            if key == "authorization" and isinstance(value, str):
                scheme, _, token = value.partition(" ")
                if scheme.lower() == "bearer":
                    return await self._gate.authenticator.authenticate_admin(token)
        raise Unauthenticated("missing `authorization: Bearer` metadata", "MISSING_CREDENTIAL")

    @asynccontextmanager
    async def _tx(self) -> AsyncIterator[AsyncSession]:
        """A session in a transaction; policy caches are dropped after a successful write."""
        async with self._sessions() as session, session.begin():
            yield session
        self._gate.catalogue.forget_cached()
        self._gate.authenticator.forget_cached()
