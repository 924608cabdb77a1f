"""Console single sign-on: OIDC authorization code + PKCE against the configured identity
provider (`MONOMCP_OIDC_ISSUER`, client `MONOMCP_CONSOLE_OIDC_CLIENT_ID`).

`/console/sso` sends the browser to the provider with a fresh PKCE verifier and state kept
in a short-lived signed cookie (the front stays stateless); `/console/sso/callback` checks
the state, exchanges the code for an access token and hands that token to the policy
service, which verifies it like any provider token and opens a console session for the
MonoMCP person with the token's verified email in the token's org (an admin there). The
access token itself is kept nowhere.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import secrets
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlencode

import httpx
from fastapi import APIRouter, Request
from fastapi.responses import RedirectResponse, Response

from mcp_front.admin.rest import AdminApi
from mcp_front.admin.sign_in import DEFAULT_TARGET, safe_target
from mcp_front.admin.templates import render
from mcp_front.mcp.signed_state import InvalidState, StateSigner
from policy_service import errors
from policy_service.config import Settings
from policy_service.wire_views import session_max_age

COOKIE = "mmcp_console_sso"
_PATH = "/console/sso"
_FLOW_SECONDS = 600


@dataclass(frozen=True, slots=True)
class SsoSettings:
    issuer: str
    client_id: str
    client_secret: str
    scopes: str
    redirect_uri: str
    # Sent as the RFC 8707 `resource` when it is an absolute URI, so the access token's `aud`
    # is one the policy service accepts.
    audience: str

    @property
    def resource(self) -> dict[str, str]:
        return {"resource": self.audience} if "://" in self.audience else {}

    @classmethod
    def from_settings(cls, settings: Settings) -> SsoSettings | None:
        if not (settings.oidc_issuer and settings.console_oidc_client_id):
            return None
        return cls(
            settings.oidc_issuer,
            settings.console_oidc_client_id,
            settings.console_oidc_client_secret,
            settings.console_oidc_scopes,
            f"{settings.public_url.rstrip('/')}{_PATH}/callback",
            settings.oidc_audience,
        )


class _Endpoints:
    """The provider's authorization and token endpoints, discovered once."""

    def __init__(self, issuer: str) -> None:
        self._issuer = issuer.rstrip("/")
        self._found: tuple[str, str] | None = None

    async def get(self) -> tuple[str, str]:
        if self._found is None:
            async with httpx.AsyncClient(timeout=10, follow_redirects=False) as http:
                for suffix in ("openid-configuration", "oauth-authorization-server"):
                    response = await http.get(f"{self._issuer}/.well-known/{suffix}")
                    if response.status_code == 200:
                        document: dict[str, Any] = response.json()
                        self._found = (document["authorization_endpoint"], document["token_endpoint"])
                        break
        if self._found is None:
            raise httpx.HTTPError(f"no OpenID or OAuth metadata at {self._issuer}")
        return self._found


def _challenge(verifier: str) -> str:
    return base64.urlsafe_b64encode(hashlib.sha256(verifier.encode()).digest()).rstrip(b"=").decode()


def _refused(message: str) -> RedirectResponse:
    return RedirectResponse(f"/console/login?{urlencode({'error': message})}", status_code=303)


def build_sso(api: AdminApi, sso: SsoSettings, signer: StateSigner) -> APIRouter:
    r = APIRouter(prefix="/console")
    endpoints = _Endpoints(sso.issuer)

    @r.get("/sso")
    async def start(next: str = DEFAULT_TARGET) -> Response:
        """Send the browser to the identity provider (authorization code + PKCE S256)."""
        verifier, state = secrets.token_urlsafe(48), secrets.token_urlsafe(24)
        try:
            authorize, _ = await endpoints.get()
        except (httpx.HTTPError, KeyError, ValueError):
            return _refused("Single sign-on is unavailable: the identity provider did not answer")
        query = {
            "response_type": "code",
            "client_id": sso.client_id,
            "redirect_uri": sso.redirect_uri,
            "scope": sso.scopes,
            "state": state,
            "code_challenge": _challenge(verifier),
            "code_challenge_method": "S256",
            **sso.resource,
        }
        response = RedirectResponse(f"{authorize}?{urlencode(query)}", status_code=303)
        flow = signer.sign("sso", {"s": state, "v": verifier, "n": safe_target(next[:200])}, _FLOW_SECONDS)
        # Lax: the provider's redirect back is a cross-site navigation that must carry it.
        secure = api.auth.secure_cookies
        response.set_cookie(COOKIE, flow, _FLOW_SECONDS, httponly=True, samesite="lax", secure=secure, path=_PATH)
        return response

    @r.get("/sso/callback")
    async def callback(request: Request, code: str = "", state: str = "", error: str = "") -> Response:
        try:
            flow = signer.verify("sso", request.cookies.get(COOKIE, ""))
        except InvalidState:
            return _refused("Single sign-on expired or did not start here; try again")
        if error or not code or not hmac.compare_digest(state.encode(), str(flow.get("s", "")).encode()):
            return _refused("Single sign-on was refused or interrupted")
        token = await _exchange(sso, endpoints, code, str(flow["v"]))
        if not token:
            return _refused("The identity provider did not issue a token")
        async with api.client(request, token, "console") as client:
            try:
                issued = await client.create_console_session()
            except errors.PermissionDenied as exc:
                return _refused(f"Single sign-on refused: {exc.message}")
            except errors.PolicyError:
                return _refused("Single sign-on refused: the token was not accepted")
        target = str(flow.get("n", DEFAULT_TARGET))
        # A same-site page continues to the console, so the SameSite=Strict session cookie is sent.
        response = render("signed_in.html", title="Signed in", target=target)
        response.headers["Refresh"] = f"0; url={target}"
        api.auth.set_session(response, issued.token, session_max_age(issued))
        response.delete_cookie(COOKIE, path=_PATH)
        return response

    return r


async def _exchange(sso: SsoSettings, endpoints: _Endpoints, code: str, verifier: str) -> str:
    """The access token for `code` ('' when the provider refuses)."""
    form = {
        "grant_type": "authorization_code",
        "code": code[:2048],
        "redirect_uri": sso.redirect_uri,
        "client_id": sso.client_id,
        "code_verifier": verifier,
        **({"client_secret": sso.client_secret} if sso.client_secret else {}),
        **sso.resource,
    }
    try:
        _, token_url = await endpoints.get()
        async with httpx.AsyncClient(timeout=10, follow_redirects=False) as http:
            response = await http.post(token_url, data=form, headers={"Accept": "application/json"})
        body = response.json() if response.status_code == 200 else {}
    except (httpx.HTTPError, ValueError, KeyError):
        return ""
    token = body.get("access_token") if isinstance(body, dict) else None
    return token if isinstance(token, str) and 0 < len(token) <= 8192 else ""
