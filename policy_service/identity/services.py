"""Service identities: who may call the hot-path policy RPCs.

The policy service trusts no caller by network position. A MonoMCP component (the front,
another internal service) proves itself with an operator-issued service credential
(`mmcpsvc_…`, same shape and checksum as API keys, only its SHA-256 stored) sent as
`authorization: Bearer …` gRPC metadata. Scopes say which RPCs it may use; org API keys
and JWTs travel inside the requests as the end user's identity and never unlock these RPCs.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime
from enum import StrEnum

from sqlalchemy import or_, select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from policy_service.errors import AlreadyExists, InvalidArgument, NotFound, PermissionDenied, Unauthenticated
from policy_service.identity import api_keys
from policy_service.storage.models import ServiceIdentity, utcnow
from policy_service.versioned_cache import VersionedCache, VersionSource

PREFIX = "mmcpsvc_"


class Scope(StrEnum):
    """What a service identity may do on the PolicyService."""

    # ListTools and GetApprovalStatus: decisions without executing anything.
    READ = "read"
    # AuthorizeToolCall (receives backend URLs and headers) and CompleteToolCall for its own calls.
    EXECUTE = "execute"
    # RecordRequest: audit rows for requests that never reach a tool.
    RECORD = "record"
    # Everything the MCP front needs.
    FRONT = "front"


_EXPANDS = {Scope.FRONT: frozenset({Scope.READ, Scope.EXECUTE, Scope.RECORD})}


def parse_scopes(names: Iterable[str]) -> frozenset[Scope]:
    scopes: set[Scope] = set()
    for name in names:
        try:
            scope = Scope(name.strip().lower())
        except ValueError as exc:
            known = ", ".join(s.value for s in Scope)
            raise InvalidArgument(f"unknown scope {name!r} (known: {known})", "BAD_SCOPE") from exc
        scopes |= _EXPANDS.get(scope, frozenset({scope}))
    if not scopes:
        raise InvalidArgument("at least one scope is required", "BAD_SCOPE")
    return frozenset(scopes)


@dataclass(frozen=True, slots=True)
class ServiceCaller:
    """An authenticated service identity."""

    id: str
    name: str
    scopes: frozenset[Scope]

    def require(self, scope: Scope) -> ServiceCaller:
        if scope not in self.scopes:
            raise PermissionDenied(f"service {self.name!r} lacks the {scope.value!r} scope", "SERVICE_SCOPE")
        return self


@dataclass(frozen=True, slots=True)
class ServiceRecord:
    id: str
    name: str
    scopes: tuple[str, ...]
    created_at: datetime
    revoked_at: datetime | None


@dataclass(frozen=True, slots=True)
class _Loaded:
    token_hash: str
    revoked: bool
    caller: ServiceCaller


def _record(row: ServiceIdentity) -> ServiceRecord:
    return ServiceRecord(row.id, row.name, tuple(row.scopes.split()), row.created_at, row.revoked_at)


class ServiceDirectory:
    """Issues, lists, revokes and authenticates service identities."""

    def __init__(
        self, sessions: async_sessionmaker[AsyncSession], cache_ttl: float, version: VersionSource | None = None
    ) -> None:
        self._sessions = sessions
        self._cache: VersionedCache[str, _Loaded | None] = VersionedCache(cache_ttl, version)

    async def authenticate(self, token: str) -> ServiceCaller:
        token = token.strip()
        if not token:
            raise Unauthenticated("this RPC needs a service credential", "SERVICE_CREDENTIAL_REQUIRED")
        service_id = api_keys.parse_key_id(token, PREFIX)
        if service_id is None:
            raise Unauthenticated("this RPC needs a service credential", "SERVICE_CREDENTIAL_REQUIRED")
        loaded = await self._cache.get_or_load(service_id, lambda: self._load(service_id))
        if loaded is None or not api_keys.matches(token, loaded.token_hash):
            raise Unauthenticated("invalid service credential", "SERVICE_CREDENTIAL_INVALID")
        if loaded.revoked:
            raise Unauthenticated("service credential revoked", "SERVICE_CREDENTIAL_REVOKED")
        return loaded.caller

    async def _load(self, service_id: str) -> _Loaded | None:
        async with self._sessions() as session:
            row = await session.get(ServiceIdentity, service_id)
        if row is None:
            return None
        caller = ServiceCaller(row.id, row.name, parse_scopes(row.scopes.split()))
        return _Loaded(row.secret_hash, row.revoked_at is not None, caller)

    async def create(self, name: str, scopes: Iterable[str]) -> tuple[ServiceRecord, str]:
        """Returns the record and the credential (shown once; only its hash is kept)."""
        name = name.strip()
        if not name or len(name) > 200 or not name.isprintable():
            raise InvalidArgument("a service name is 1–200 printable characters", "BAD_NAME")
        names = sorted({s.strip().lower() for s in scopes if s.strip()})
        parse_scopes(names)
        key = api_keys.generate(PREFIX)
        row = ServiceIdentity(id=key.key_id, name=name, scopes=" ".join(names), secret_hash=key.token_hash)
        try:
            async with self._sessions() as session, session.begin():
                session.add(row)
        except IntegrityError as exc:
            raise AlreadyExists(f"a service named {name!r} exists", "SERVICE_EXISTS") from exc
        return _record(row), key.token

    async def list(self) -> list[ServiceRecord]:
        async with self._sessions() as session:
            rows = (await session.execute(select(ServiceIdentity).order_by(ServiceIdentity.created_at))).scalars()
            return [_record(r) for r in rows]

    async def revoke(self, id_or_name: str) -> ServiceRecord:
        async with self._sessions() as session, session.begin():
            row = (
                await session.execute(
                    select(ServiceIdentity).where(
                        or_(ServiceIdentity.id == id_or_name, ServiceIdentity.name == id_or_name)
                    )
                )
            ).scalar_one_or_none()
            if row is None:
                raise NotFound("no such service identity", "SERVICE_NOT_FOUND")
            if row.revoked_at is None:
                await session.execute(
                    update(ServiceIdentity).where(ServiceIdentity.id == row.id).values(revoked_at=utcnow())
                )
                await session.refresh(row)
        self._cache.clear()
        return _record(row)
