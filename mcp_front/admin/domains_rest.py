"""REST for custom domains at /api/v1/domains: claim, verify, list, release. One
DomainService RPC per call, as the caller; authorization is the policy service's."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Request
from pydantic import BaseModel, Field

from mcp_front.admin.rest import AdminApi, to_json
from policy_service.domain_client import DomainClient

DomainName = Annotated[str, Field(min_length=3, max_length=253, pattern=r"^[A-Za-z0-9.-]+$")]


class DomainBody(BaseModel):
    domain: DomainName


class VerifyBody(BaseModel):
    method: str = Field("", pattern="^(dns|http|)$", description="dns, http, or empty to try both")


def build_domains_router(api: AdminApi) -> APIRouter:
    r = APIRouter(prefix="/api/v1/domains", tags=["domains"])

    @r.get("")
    async def list_domains(request: Request) -> list[dict[str, Any]]:
        return [to_json(d) for d in await api.call(request, lambda c: DomainClient(c).list_domains())]

    @r.post("", status_code=201)
    async def add_domain(request: Request, body: DomainBody) -> dict[str, Any]:
        """Claim a domain; the answer names the TXT record (or HTTP token) that proves it."""
        return to_json(await api.call(request, lambda c: DomainClient(c).add_domain("", body.domain)))

    @r.post("/{domain}/verify")
    async def verify_domain(request: Request, domain: DomainName, body: VerifyBody | None = None) -> dict[str, Any]:
        """Check the proof now; 409 (DOMAIN_NOT_PROVEN) says what to publish when it is missing."""
        method = body.method if body is not None else ""
        return to_json(await api.call(request, lambda c: DomainClient(c).verify_domain("", domain, method)))

    @r.delete("/{domain}")
    async def remove_domain(request: Request, domain: DomainName) -> dict[str, Any]:
        return to_json(await api.call(request, lambda c: DomainClient(c).remove_domain("", domain)))

    return r
