"""The one routing decision: which org and toolkit a Host and path address."""

from __future__ import annotations

from typing import Any

from mcp_front.edge.routing import Route, Router, VerifiedDomains


class _Table(VerifiedDomains):
    """A fixed verified-domain table (the real one is loaded from the policy service)."""

    def __init__(self, table: dict[str, str]) -> None:
        self._table = table

    async def org_of(self, domain: str) -> str:
        return self._table.get(domain, "")


def _scope(host: str, path: str) -> dict[str, Any]:
    return {"type": "http", "path": path, "headers": [(b"host", host.encode())]}


ROUTER = Router(_Table({"mcp.acme.com": "acme"}), ["gw.example.com", "127.0.0.1:*"], "https://gw.example.com")


async def test_own_hosts_route_by_org_and_toolkit() -> None:
    route = await ROUTER.resolve(_scope("gw.example.com", "/acme/seo/mcp"))
    assert route == Route("acme", "seo", endpoint="https://gw.example.com/acme/seo/mcp")
    assert await ROUTER.resolve(_scope("127.0.0.1:8765", "/seo/mcp")) is None


async def test_a_verified_domain_routes_toolkits_of_its_org_only() -> None:
    route = await ROUTER.resolve(_scope("MCP.Acme.com:8443", "/seo/mcp"))
    assert route == Route(
        "acme", "seo", "mcp.acme.com", "https://mcp.acme.com:8443", "https://mcp.acme.com:8443/seo/mcp"
    )
    assert await ROUTER.resolve(_scope("mcp.acme.com", "/globex/seo/mcp")) is None


async def test_unverified_hosts_get_the_ordinary_routes_and_the_host_check_refuses_them() -> None:
    assert await ROUTER.resolve(_scope("mcp.evil.com", "/seo/mcp")) is None
    route = await ROUTER.resolve(_scope("mcp.evil.com", "/acme/seo/mcp"))
    assert route is not None and route.domain == ""  # HostCheck answers 421
    assert await ROUTER.resolve(_scope("mcp.acme.com/../x", "/seo/mcp")) is None
