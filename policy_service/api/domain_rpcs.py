"""DomainService: custom domains for orgs. Decisions live in policy_service/domains;
this layer authenticates, authorizes and translates. Every change is audited by the
admin-action interceptor (api/admin_audit.py)."""

from __future__ import annotations

from typing import Any
from urllib.parse import urlsplit

import grpc
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from policy_service._generated.monomcp.policy.v1 import domains_pb2, domains_pb2_grpc
from policy_service.api import convert, validation
from policy_service.api.errors import translated
from policy_service.api.metadata import admin_principal, service_caller
from policy_service.domains import names, store
from policy_service.domains.recheck import Released, ReleaseRow
from policy_service.domains.verification import METHODS, DomainVerifier
from policy_service.errors import FailedPrecondition, InvalidArgument
from policy_service.gate import Gate, RequestFacts
from policy_service.identity.authenticator import Authenticator
from policy_service.identity.principal import Principal
from policy_service.identity.services import Scope, ServiceDirectory
from policy_service.permissions.admin_access import admin_org


def gateway_hosts(public_url: str, allowed_hosts: list[str]) -> frozenset[str]:
    """The gateway's own host names (no org may claim them)."""
    hosts = {urlsplit(public_url).hostname or ""}
    for entry in allowed_hosts:
        hosts.add(urlsplit(f"//{entry.replace(':*', '')}").hostname or "")
    return frozenset(h for h in hosts if h)


def release_row(gate: Gate) -> ReleaseRow:
    """The audit row of a domain the recheck released: an admin-shaped action whose actor is
    the system (source `system`), filed under the org, with the before/after of the domain."""

    def row(gone: Released) -> dict[str, Any]:
        before = {"domain": gone.domain, "verified_at": gone.verified_at.isoformat()}
        return gate.admin_action_row(
            None,
            "system",
            "system/ReleaseDomain",
            {"org_slug": gone.org_slug, "domain": gone.domain, "reason": "no proof at any check for the grace period"},
            "ok",
            "",
            RequestFacts(),
            gone.org_slug,
            {"before": before, "after": {"domain": gone.domain, "verified_at": None}},
        )

    return row


def domain_message(view: store.DomainView) -> domains_pb2.Domain:
    return domains_pb2.Domain(
        domain=view.domain,
        org_slug=view.org_slug,
        verified=view.verified_at is not None,
        verification_token=view.token,
        txt_record_name=names.txt_record_name(view.domain),
        txt_record_value=names.txt_record_value(view.token),
        http_url=names.http_url(view.domain),
        created_at=convert.ts(view.created_at),
        verified_at=convert.ts(view.verified_at),
    )


class DomainServicer(domains_pb2_grpc.DomainServiceServicer):
    def __init__(
        self,
        sessions: async_sessionmaker[AsyncSession],
        authenticator: Authenticator,
        services: ServiceDirectory,
        verifier: DomainVerifier,
        reserved: frozenset[str] = frozenset(),
    ) -> None:
        self._sessions = sessions
        self._authenticator = authenticator
        self._services = services
        self._verifier = verifier
        self._reserved = reserved

    async def _principal(self, context: grpc.aio.ServicerContext) -> Principal:
        return await admin_principal(context, self._authenticator)

    @translated
    async def AddDomain(
        self, request: domains_pb2.AddDomainRequest, context: grpc.aio.ServicerContext
    ) -> domains_pb2.Domain:
        principal = await self._principal(context)
        validation.text(request.domain, "domain", 253)
        if names.normalize(request.domain) in self._reserved:
            raise InvalidArgument("that is one of this gateway's own host names", "DOMAIN_RESERVED")
        async with self._sessions() as session, session.begin():
            org = await admin_org(session, principal, request.org_slug)
            return domain_message(await store.add(session, org, request.domain))

    @translated
    async def VerifyDomain(
        self, request: domains_pb2.VerifyDomainRequest, context: grpc.aio.ServicerContext
    ) -> domains_pb2.Domain:
        principal = await self._principal(context)
        validation.text(request.domain, "domain", 253)
        if request.method not in ("", *METHODS):
            raise InvalidArgument("method must be dns, http or empty (either)", "BAD_METHOD")
        async with self._sessions() as session:
            org = await admin_org(session, principal, request.org_slug)
            row = await store.get(session, org, request.domain)
            domain, token, already = row.domain, row.verification_token, row.verified_at is not None
        # The lookups run outside any transaction: they may take seconds.
        if not already and not await self._verifier.proven(domain, token, request.method):
            raise FailedPrecondition(
                f"no proof found: publish TXT {names.txt_record_name(domain)} = {names.txt_record_value(token)}"
                f" or serve the token at {names.http_url(domain)}, then verify again",
                "DOMAIN_NOT_PROVEN",
            )
        async with self._sessions() as session, session.begin():
            org = await admin_org(session, principal, request.org_slug)
            return domain_message(await store.mark_verified(session, await store.get(session, org, domain), org))

    @translated
    async def ListDomains(
        self, request: domains_pb2.ListDomainsRequest, context: grpc.aio.ServicerContext
    ) -> domains_pb2.ListDomainsResponse:
        principal = await self._principal(context)
        async with self._sessions() as session:
            org = await admin_org(session, principal, request.org_slug)
            views = await store.list_in_org(session, org)
        return domains_pb2.ListDomainsResponse(domains=[domain_message(v) for v in views])

    @translated
    async def RemoveDomain(
        self, request: domains_pb2.RemoveDomainRequest, context: grpc.aio.ServicerContext
    ) -> domains_pb2.Domain:
        principal = await self._principal(context)
        validation.text(request.domain, "domain", 253)
        async with self._sessions() as session, session.begin():
            org = await admin_org(session, principal, request.org_slug)
            return domain_message(await store.remove(session, org, request.domain))

    @translated
    async def ListVerifiedDomains(
        self, request: domains_pb2.ListVerifiedDomainsRequest, context: grpc.aio.ServicerContext
    ) -> domains_pb2.ListVerifiedDomainsResponse:
        await service_caller(context, self._services, Scope.READ)
        async with self._sessions() as session:
            found = await store.verified(session)
        return domains_pb2.ListVerifiedDomainsResponse(
            domains=[domains_pb2.VerifiedDomain(domain=d, org_slug=o) for d, o in found]
        )
