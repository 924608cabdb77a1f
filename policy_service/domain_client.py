"""Typed client of the DomainService (custom domains), on a PolicyClient's RpcChannel so
callers keep one connection, their credentials and one error mapping."""

from __future__ import annotations

from policy_service._generated.monomcp.policy.v1 import domains_pb2, domains_pb2_grpc
from policy_service.client import PolicyClient

Domain = domains_pb2.Domain


class DomainClient:
    def __init__(self, policy: PolicyClient) -> None:
        self._rpc = policy.channel

    @property
    def _domains(self) -> domains_pb2_grpc.DomainServiceStub:
        return self._rpc.stub(domains_pb2_grpc.DomainServiceStub)  # a closed channel reopens

    async def add_domain(self, org: str, domain: str) -> domains_pb2.Domain:
        request = domains_pb2.AddDomainRequest(org_slug=org, domain=domain)
        return await self._rpc.call(self._domains.AddDomain, request, admin=True)

    async def verify_domain(self, org: str, domain: str, method: str = "") -> domains_pb2.Domain:
        request = domains_pb2.VerifyDomainRequest(org_slug=org, domain=domain, method=method)
        return await self._rpc.call(self._domains.VerifyDomain, request, admin=True)

    async def list_domains(self, org: str = "") -> list[domains_pb2.Domain]:
        request = domains_pb2.ListDomainsRequest(org_slug=org)
        return list((await self._rpc.call(self._domains.ListDomains, request, admin=True)).domains)

    async def remove_domain(self, org: str, domain: str) -> domains_pb2.Domain:
        request = domains_pb2.RemoveDomainRequest(org_slug=org, domain=domain)
        return await self._rpc.call(self._domains.RemoveDomain, request, admin=True)

    async def list_verified_domains(self) -> dict[str, str]:
        """{domain: org slug} of every verified domain (needs a service identity)."""
        response = await self._rpc.call(self._domains.ListVerifiedDomains, domains_pb2.ListVerifiedDomainsRequest())
        return {d.domain: d.org_slug for d in response.domains}
