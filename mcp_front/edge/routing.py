"""Which org and toolkit a request addresses: the one routing decision of the front.

- On the gateway's own hosts (`MONOMCP_ALLOWED_HOSTS`, and any Host that is not a verified
  custom domain): `/{org}/{toolkit}/mcp`.
- On an org's verified custom domain: `/{toolkit}/mcp` of that org, and nothing else.

A Host that names no verified domain falls through to the first rule, where the host check
refuses it (421) and other paths get the identical 404: spoofing an unverified domain
reaches nothing. The verified-domain table comes from the policy service and is at most
`MONOMCP_DOMAIN_CACHE_SECONDS` stale; it is only consulted for Hosts that are not the
gateway's own, so ordinary requests cost nothing extra.
"""

from __future__ import annotations

import contextvars
import logging
import re
from dataclasses import dataclass
from urllib.parse import urlsplit

from starlette.types import Scope

from mcp_front.edge.request import header
from policy_service.client import PolicyClient
from policy_service.domain_client import DomainClient
from policy_service.errors import PolicyError
from policy_service.versioned_cache import VersionedCache

log = logging.getLogger("monomcp.front")

_SLUG = r"[a-z0-9](?:[a-z0-9-]{0,61}[a-z0-9])?"
TOOLKIT_PATH = re.compile(rf"^/({_SLUG})/({_SLUG})/mcp/?$")
DOMAIN_TOOLKIT_PATH = re.compile(rf"^/({_SLUG})/mcp/?$")
_HOST = re.compile(r"^([a-z0-9.-]{1,253})(?::(\d{1,5}))?$")

# The base URL of the request being served when it came through a custom domain, so links
# the gateway writes (approval pages) name the domain the client used.
request_base_url: contextvars.ContextVar[str] = contextvars.ContextVar("monomcp_request_base_url", default="")


def base_url_or(default: str) -> str:
    return request_base_url.get() or default


@dataclass(frozen=True, slots=True)
class Route:
    org: str
    toolkit: str
    # The verified custom domain the request came through ('' on the gateway's own hosts),
    # and the base URL clients use there (scheme of MONOMCP_PUBLIC_URL, the Host as sent).
    domain: str = ""
    base_url: str = ""
    # The endpoint's URL exactly as clients address it (the OAuth `resource`).
    endpoint: str = ""


def host_allowed(host: str, patterns: list[str]) -> bool:
    """The SDK's rule: an exact match, or `name:*` for any port of `name`."""
    return host in patterns or any(p.endswith(":*") and host.startswith(p[:-1]) for p in patterns)


class VerifiedDomains:
    """{domain: org} from the policy service, reloaded when older than `ttl`; while the
    policy service cannot answer, the last table it gave is kept."""

    def __init__(self, policy: PolicyClient, ttl: float) -> None:
        self._client = DomainClient(policy)
        self._cache: VersionedCache[str, dict[str, str]] = VersionedCache(max(ttl, 0.05), max_entries=1)
        self._last: dict[str, str] = {}

    async def org_of(self, domain: str) -> str:
        return (await self._cache.get_or_load("all", self._load)).get(domain, "")

    async def _load(self) -> dict[str, str]:
        try:
            self._last = await self._client.list_verified_domains()
        except PolicyError as exc:
            log.warning("verified domains unavailable, keeping the last table: %s", exc.message)
        return self._last


class Router:
    def __init__(self, domains: VerifiedDomains, own_hosts: list[str], public_url: str) -> None:
        self._domains = domains
        self._own_hosts = own_hosts
        self._scheme = urlsplit(public_url).scheme or "https"
        self._public_url = public_url.rstrip("/")

    async def serves_host(self, scope: Scope) -> bool:
        """Whether the Host names the gateway: one of its own hosts or a verified custom domain.
        The admin surface (REST API, console) answers only these, as toolkit endpoints do: a
        page on a name rebound to the gateway's address reaches nothing (DNS rebinding)."""
        host = header(scope, b"host").lower()
        if host_allowed(host, self._own_hosts):
            return True
        found = _HOST.match(host)
        return bool(found and await self._domains.org_of(found.group(1).rstrip(".")))

    async def resolve(self, scope: Scope) -> Route | None:
        """The toolkit endpoint `scope` addresses, or None (not an endpoint path)."""
        path: str = scope["path"]
        host = header(scope, b"host").lower()
        if host and not host_allowed(host, self._own_hosts):
            found = _HOST.match(host)
            org = await self._domains.org_of(found.group(1).rstrip(".")) if found else ""
            if org and found:
                match = DOMAIN_TOOLKIT_PATH.match(path)
                if match is None:
                    return None
                base = f"{self._scheme}://{host}"
                return Route(org, match.group(1), found.group(1).rstrip("."), base, f"{base}/{match.group(1)}/mcp")
        match = TOOLKIT_PATH.match(path)
        if match is None:
            return None
        org, toolkit = match.group(1), match.group(2)
        return Route(org, toolkit, endpoint=f"{self._public_url}/{org}/{toolkit}/mcp")
