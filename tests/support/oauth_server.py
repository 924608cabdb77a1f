"""A local OAuth 2.1 authorization server for tests, built from the MCP SDK's own
authorization-server routes: dynamic client registration, authorization code + PKCE (the
signed-in user consents at once), and RS256 access tokens whose `aud` is the RFC 8707
`resource` the client asked for, signed with a key published at /jwks."""

from __future__ import annotations

import secrets
import time
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import parse_qs, urlsplit

import httpx2
from mcp.server.auth.provider import (
    AccessToken,
    AuthorizationCode,
    AuthorizationParams,
    RefreshToken,
    construct_redirect_uri,
)
from mcp.server.auth.routes import create_auth_routes
from mcp.server.auth.settings import ClientRegistrationOptions
from mcp.shared.auth import AuthorizationCodeResult, OAuthClientInformationFull, OAuthToken
from pydantic import AnyHttpUrl
from starlette.applications import Starlette

from tests.support.idp import LocalIdp
from tests.support.servers import free_port, serve_asgi


@dataclass
class LocalAuthorizationServer:
    idp: LocalIdp
    # The claims of the person who signs in at /authorize (org and role mapping).
    user_claims: dict[str, Any] = field(default_factory=dict)
    clients: dict[str, OAuthClientInformationFull] = field(default_factory=dict)
    codes: dict[str, AuthorizationCode] = field(default_factory=dict)
    issued: list[str] = field(default_factory=list)

    async def get_client(self, client_id: str) -> OAuthClientInformationFull | None:
        return self.clients.get(client_id)

    async def register_client(self, client_info: OAuthClientInformationFull) -> None:
        self.clients[str(client_info.client_id)] = client_info

    async def authorize(self, client: OAuthClientInformationFull, params: AuthorizationParams) -> str:
        code = secrets.token_urlsafe(24)
        self.codes[code] = AuthorizationCode(
            code=code,
            scopes=params.scopes or [],
            expires_at=time.time() + 300,
            client_id=str(client.client_id),
            code_challenge=params.code_challenge,
            redirect_uri=params.redirect_uri,
            redirect_uri_provided_explicitly=params.redirect_uri_provided_explicitly,
            resource=params.resource,
            subject="user-1",
        )
        return construct_redirect_uri(str(params.redirect_uri), code=code, state=params.state)

    async def load_authorization_code(
        self, client: OAuthClientInformationFull, authorization_code: str
    ) -> AuthorizationCode | None:
        return self.codes.get(authorization_code)

    async def exchange_authorization_code(
        self, client: OAuthClientInformationFull, authorization_code: AuthorizationCode
    ) -> OAuthToken:
        self.codes.pop(authorization_code.code, None)
        audience = authorization_code.resource or "no-resource-requested"
        token = self.idp.token(audience, sub=authorization_code.subject or "user-1", **self.user_claims)
        self.issued.append(token)
        return OAuthToken(access_token=token, token_type="Bearer", expires_in=300)

    async def load_refresh_token(self, client: OAuthClientInformationFull, refresh_token: str) -> RefreshToken | None:
        return None

    async def exchange_refresh_token(
        self, client: OAuthClientInformationFull, refresh_token: RefreshToken, scopes: list[str]
    ) -> OAuthToken:
        raise NotImplementedError

    async def load_access_token(self, token: str) -> AccessToken | None:
        return None

    async def revoke_token(self, token: AccessToken | RefreshToken) -> None:
        return None


@asynccontextmanager
async def local_authorization_server(idp: LocalIdp, **user_claims: Any) -> AsyncIterator[LocalAuthorizationServer]:
    """Serves the SDK's authorization-server routes and the JWKS; `idp.issuer` becomes its URL."""
    port = free_port()
    # As the SDK's metadata spells it (with the trailing slash), like several real providers.
    idp.issuer = f"http://127.0.0.1:{port}/"
    server = LocalAuthorizationServer(idp, user_claims)
    routes = create_auth_routes(
        server,  # type: ignore[arg-type]
        AnyHttpUrl(idp.issuer),
        client_registration_options=ClientRegistrationOptions(enabled=True),
    )
    async with serve_asgi(Starlette(routes=[*routes, *idp.routes()]), port):
        yield server


class BrowserStandIn:
    """Plays the user's browser for the SDK's OAuth client: follows the authorization URL
    (the server consents at once) and hands the code from the redirect back."""

    def __init__(self) -> None:
        self._result: AuthorizationCodeResult | None = None

    async def redirect(self, authorization_url: str) -> None:
        async with httpx2.AsyncClient(follow_redirects=False) as http:
            response = await http.get(authorization_url)
        query = parse_qs(urlsplit(response.headers["location"]).query)
        self._result = AuthorizationCodeResult(
            code=query["code"][0], state=query.get("state", [None])[0], iss=query.get("iss", [None])[0]
        )

    async def callback(self) -> AuthorizationCodeResult:
        if self._result is None:
            raise RuntimeError("no authorization redirect was followed")
        return self._result
