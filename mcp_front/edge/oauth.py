"""The opt-in OAuth 2.1 resource-server mode (`MONOMCP_OAUTH_RESOURCE_SERVER=true`).

- Each endpoint publishes RFC 9728 protected-resource metadata at
  `/.well-known/oauth-protected-resource/{endpoint path}`, with `resource` equal to the
  endpoint's URL exactly (on a custom domain, the domain's URL).
- A 401 from an endpoint names that document in `WWW-Authenticate: Bearer
  resource_metadata="…"`, which is how MCP clients find the authorization server.
- A token from the configured provider must name this very endpoint in `aud` (RFC 8707
  audience binding); the policy service verifies its signature, issuer, expiry and org.

Off by default: clients that find metadata drop a static Authorization header.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any
from urllib.parse import urlsplit

from policy_service.config import Settings

METADATA_PREFIX = "/.well-known/oauth-protected-resource"


@dataclass(frozen=True, slots=True)
class ResourceServer:
    authorization_servers: tuple[str, ...]
    scopes: tuple[str, ...]
    # Tokens this issuer signs are audience-bound to an endpoint.
    issuer: str

    @classmethod
    def from_settings(cls, settings: Settings) -> ResourceServer | None:
        if not settings.oauth_resource_server:
            return None
        servers = tuple(s.strip() for s in settings.oauth_authorization_servers.split(",") if s.strip())
        servers = servers or ((settings.oidc_issuer,) if settings.oidc_issuer else ())
        if not servers:
            raise ValueError(
                "MONOMCP_OAUTH_RESOURCE_SERVER needs MONOMCP_OAUTH_AUTHORIZATION_SERVERS or MONOMCP_OIDC_ISSUER"
            )
        scopes = tuple(s.strip() for s in settings.oauth_scopes.split(",") if s.strip())
        return cls(servers, scopes, settings.oidc_issuer)

    @staticmethod
    def metadata_url(endpoint: str) -> str:
        """RFC 9728 §3.1: the well-known segment goes between the host and the path."""
        parts = urlsplit(endpoint)
        return f"{parts.scheme}://{parts.netloc}{METADATA_PREFIX}{parts.path}"

    def metadata(self, endpoint: str) -> dict[str, Any]:
        document: dict[str, Any] = {
            "resource": endpoint,
            "authorization_servers": list(self.authorization_servers),
            "bearer_methods_supported": ["header"],
        }
        if self.scopes:
            document["scopes_supported"] = list(self.scopes)
        return document

    def bound_elsewhere(self, token: str, endpoint: str) -> bool:
        """A token of our provider whose `aud` does not name this endpoint. The claims are
        read unverified here; the policy service verifies the same token's signature."""
        if token.count(".") != 2:
            return False
        import jwt  # here: only the opt-in resource-server mode reads tokens (~30 ms of start-up)

        try:
            claims = jwt.decode(token, options={"verify_signature": False})
        except jwt.InvalidTokenError:
            return False
        if not isinstance(claims, dict) or claims.get("iss") != self.issuer:
            return False
        audience = claims.get("aud")
        audiences = audience if isinstance(audience, list) else [audience]
        return endpoint not in audiences
