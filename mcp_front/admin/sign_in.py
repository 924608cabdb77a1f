"""Console sign-in and sign-out, and the console's static files.

People sign in with email, password and org (checked, limited and audited by the policy
service like `/api/v1/auth/login`); automation may still paste an admin API key or JWT.
Either way the policy service answers with a console session and the browser keeps only
that session token (the password or credential is never stored anywhere). Sign-out
revokes the session server-side before the cookie is dropped.
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated
from urllib.parse import urlencode

from fastapi import APIRouter, Form, HTTPException, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response

from mcp_front.admin.auth import COOKIE
from mcp_front.admin.inputs import Ident
from mcp_front.admin.rest import AdminApi
from mcp_front.admin.templates import render
from policy_service import errors
from policy_service.client import PolicyUnavailable
from policy_service.wire_views import session_max_age

STATIC = Path(__file__).parent / "static"
_MEDIA_TYPES = {".css": "text/css; charset=utf-8", ".js": "text/javascript; charset=utf-8"}
_FILES = {p.name: (p.read_bytes(), _MEDIA_TYPES[p.suffix]) for p in STATIC.iterdir() if p.suffix in _MEDIA_TYPES}
DEFAULT_TARGET = "/console/approvals"


def safe_target(target: str) -> str:
    """Where to go after sign-in: a console path, never another site."""
    ok = target.startswith("/console") and "//" not in target and "\\" not in target and target.isprintable()
    return target if ok else DEFAULT_TARGET


def _refused(message: str, target: str) -> RedirectResponse:
    return RedirectResponse(f"/console/login?{urlencode({'error': message, 'next': target})}", status_code=303)


def build_sign_in(api: AdminApi) -> APIRouter:
    r = APIRouter()  # mounted under /console by build_console

    @r.get("/static/{name}")
    async def static(name: Ident) -> Response:
        if name not in _FILES:
            raise HTTPException(404, "no such file")
        body, media_type = _FILES[name]
        return Response(body, media_type=media_type)

    @r.get("/login", response_class=HTMLResponse)
    async def login_form(next: Ident = DEFAULT_TARGET, error: Ident = "") -> HTMLResponse:
        token = api.auth.new_login_token()
        target = safe_target(next)
        response = render(
            "login.html",
            title="Sign in",
            error=error,
            target=target,
            csrf=token,
            sso_start="/console/sso?" + urlencode({"next": target}) if api.single_sign_on else "",
        )
        api.auth.set_login_token(response, token)
        return response

    @r.post("/login")
    async def login(
        request: Request,
        credential: Annotated[str, Form(max_length=8192)] = "",
        email: Annotated[str, Form(max_length=320)] = "",
        password: Annotated[str, Form(max_length=256)] = "",
        org: Annotated[str, Form(max_length=63)] = "",
        next: Annotated[str, Form(max_length=200)] = DEFAULT_TARGET,
        csrf: Annotated[str, Form(max_length=200)] = "",
    ) -> Response:
        """Email, password and org (people), or an admin credential (automation)."""
        api.auth.check_login_token(request, csrf)
        target = safe_target(next)
        address = request.client.host if request.client else ""
        agent = request.headers.get("user-agent", "")[:512]
        # The service token vouches for `address` on the password sign-in.
        async with api.client(request, credential.strip(), "console") as client:
            try:
                if credential.strip():
                    issued = await client.create_console_session()
                elif email and password and org:
                    issued = await client.create_password_console_session(
                        email.strip(), password, org.strip(), address, agent
                    )
                else:
                    return _refused("Enter your email, password and org", target)
            except PolicyUnavailable:
                raise HTTPException(503, "the policy service is unavailable; try again") from None
            except errors.PermissionDenied:
                return _refused("An org admin is needed", target)
            except errors.RateLimited:
                return _refused("Too many failed sign-ins; wait a few minutes", target)
            except errors.PolicyError:
                return _refused("Wrong email, password or org" if not credential else "Invalid credential", target)
        response = RedirectResponse(target, status_code=303)
        api.auth.set_session(response, issued.token, session_max_age(issued))
        return response

    @r.post("/logout")
    async def logout(request: Request) -> Response:
        api.auth.require_same_origin(request)
        token = request.cookies.get(COOKIE, "")
        if token:
            async with api.client(request, token, "console") as client:
                try:
                    await client.end_console_session()
                except PolicyUnavailable:
                    raise HTTPException(503, "could not sign out: the policy service is unavailable") from None
                except errors.Unauthenticated:
                    pass  # already ended (expired, revoked or signed out elsewhere)
        response = RedirectResponse("/console/login", status_code=303)
        api.auth.clear_session(response)
        return response

    return r
