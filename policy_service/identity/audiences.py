"""Which `aud` values make an external token good for this gateway.

- The configured audience (`MONOMCP_OIDC_AUDIENCE`), for any org.
- In OAuth resource-server mode (RFC 8707), the URL of one of this gateway's endpoints for
  the token's own org: `{MONOMCP_PUBLIC_URL}/{org}/{toolkit}/mcp`, or
  `{scheme}://{a verified domain of the org}/{toolkit}/mcp` (the public URL's scheme). A token minted for another
  resource server of the same provider is refused. The front additionally requires, on an
  MCP endpoint, that the token names that very endpoint (mcp_front/edge/oauth.py).
"""

from __future__ import annotations

import re
from urllib.parse import urlsplit

from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from policy_service.domains import store
from policy_service.versioned_cache import VersionedCache

_SLUG = r"[a-z0-9](?:[a-z0-9-]{0,61}[a-z0-9])?"


class AudiencePolicy:
    def __init__(
        self,
        configured: str,
        resource_server: bool = False,
        public_url: str = "",
        sessions: async_sessionmaker[AsyncSession] | None = None,
        cache_ttl: float = 1.0,
    ) -> None:
        self._configured = configured
        self._resource_server = resource_server and sessions is not None
        base = public_url.rstrip("/")
        self._scheme = urlsplit(base).scheme or "https"
        self._own = re.compile(rf"^{re.escape(base)}/({_SLUG})/{_SLUG}/mcp$")
        self._sessions = sessions
        self._domains: VersionedCache[str, dict[str, str]] = VersionedCache(max(cache_ttl, 0.05), max_entries=1)

    async def accepts(self, audiences: tuple[str, ...], org_slug: str) -> bool:
        if self._configured and self._configured in audiences:
            return True
        if not self._resource_server:
            return False
        for audience in audiences:
            found = self._own.match(audience)
            if found is not None and found.group(1) == org_slug:
                return True
            if await self._domain_org(audience) == org_slug:
                return True
        return False

    async def _domain_org(self, audience: str) -> str:
        parts = urlsplit(audience)
        if parts.scheme != self._scheme or not re.fullmatch(rf"/{_SLUG}/mcp", parts.path) or parts.query:
            return ""
        table = await self._domains.get_or_load("all", self._load)
        return table.get(parts.hostname or "", "")

    async def _load(self) -> dict[str, str]:
        if self._sessions is None:
            return {}
        async with self._sessions() as session:
            return dict(await store.verified(session))
