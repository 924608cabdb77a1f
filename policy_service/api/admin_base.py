"""What every admin RPC group shares: the caller's principal and a database session."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

import grpc
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from policy_service.api.metadata import admin_principal
from policy_service.approvals.store import TTLs
from policy_service.approvals.watch import ApprovalWatcher
from policy_service.audit.digests import AuditDigester
from policy_service.gate import Gate
from policy_service.identity.logins import Logins
from policy_service.identity.principal import Principal
from policy_service.identity.services import ServiceDirectory
from policy_service.toolkits.egress import EgressPolicy


class AdminBase:
    def __init__(
        self,
        sessions: async_sessionmaker[AsyncSession],
        gate: Gate,
        ttls: TTLs,
        watcher: ApprovalWatcher,
        digester: AuditDigester,
        services: ServiceDirectory,
        egress: EgressPolicy | None = None,
        logins: Logins | None = None,
    ) -> None:
        self._sessions = sessions
        self._gate = gate
        self._ttls = ttls
        self._watcher = watcher
        self._digester = digester
        self._services = services
        self._egress = egress or EgressPolicy()  # fail closed: public backends only
        self._logins = logins  # people's sign-in (None: not offered by this server)

    async def _principal(self, context: grpc.aio.ServicerContext) -> Principal:
        return await admin_principal(context, self._gate.authenticator)

    @asynccontextmanager
    async def _tx(self) -> AsyncIterator[AsyncSession]:
        """A session in a transaction; policy caches are dropped after a successful write."""
        async with self._sessions() as session, session.begin():
            yield session
        self._gate.catalogue.forget_cached()
        self._gate.conditions.forget_cached()
        self._gate.authenticator.forget_cached()
