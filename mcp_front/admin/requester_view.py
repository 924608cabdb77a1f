"""The approval page as the requester sees it: read-only status, who decides, expiry.

The console's sessions are for org admins, so a member who follows the link in their
result has none. They sign in on the page itself (email and password, or the API key or
JWT that made the call); the front asks the policy service with that credential once,
renders the answer and keeps nothing: no session, no cookie. The policy service decides
who may see the approval (its requester, or the org's admins), as for every other read.
"""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Form, Request
from fastapi.responses import HTMLResponse, Response

from mcp_front.admin.inputs import Ident
from mcp_front.admin.rest import AdminApi
from mcp_front.admin.templates import render
from policy_service import errors
from policy_service.client import Approval, PolicyUnavailable
from policy_service.wire_views import approval_view

_ADVICE = {
    "pending": "Waiting for an admin. Once approved, call the tool again with the same arguments; it runs once.",
    "approved": "Approved: call the tool again with exactly the same arguments; it runs once.",
    "consumed": "Approved, and already used by one call.",
    "denied": "Denied. Calling again with the same arguments asks again.",
    "expired": "Expired before it was used. Calling the tool again asks again.",
}


def sign_in_to_view(api: AdminApi, approval_id: str, error: str = "", status_code: int = 200) -> HTMLResponse:
    token = api.auth.new_login_token()
    response = render(
        "approval_public.html",
        status_code,
        title="Approval request",
        approval=None,
        approval_id=approval_id,
        csrf=token,
        error=error,
    )
    api.auth.set_login_token(response, token)
    return response


def _shown(message: Approval) -> HTMLResponse:
    approval = approval_view(message)
    status = approval.status or "unknown"
    return render(
        "approval_public.html",
        title=f"Approval request: {approval.tool}",
        approval=approval,
        status=status,
        advice=_ADVICE.get(status, ""),
    )


def build_requester_view(api: AdminApi) -> APIRouter:
    r = APIRouter()  # mounted under /console; under /console/login so the sign-in form's token cookie is sent

    @r.post("/login/approval/{approval_id}", response_class=HTMLResponse)
    async def view(
        request: Request,
        approval_id: Ident,
        credential: Annotated[str, Form(max_length=8192)] = "",
        email: Annotated[str, Form(max_length=320)] = "",
        password: Annotated[str, Form(max_length=256)] = "",
        org: Annotated[str, Form(max_length=63)] = "",
        csrf: Annotated[str, Form(max_length=200)] = "",
    ) -> Response:
        api.auth.check_login_token(request, csrf)
        address = request.client.host if request.client else ""
        agent = request.headers.get("user-agent", "")[:512]
        try:
            if credential.strip():
                async with api.client(request, credential.strip(), "console") as client:
                    return _shown(await client.get_approval(approval_id))
            if not (email and password and org):
                return sign_in_to_view(api, approval_id, "Enter your email, password and org, or a key", 400)
            sign_in = api.client(request, "", "console")
            async with sign_in as anonymous:
                signed = await anonymous.login(email.strip(), password, org.strip(), address, agent)
            async with api.client(request, signed.access_token, "console") as client:
                try:
                    return _shown(await client.get_approval(approval_id))
                finally:
                    await client.logout(signed.refresh_token)  # nothing outlives this page
        except PolicyUnavailable:
            return sign_in_to_view(api, approval_id, "The policy service is unavailable; try again", 503)
        except errors.RateLimited:
            return sign_in_to_view(api, approval_id, "Too many failed sign-ins; wait a few minutes", 429)
        except (errors.NotFound, errors.PermissionDenied):
            message = "No approval request with this id is visible to you (only its requester and org admins see it)"
            return sign_in_to_view(api, approval_id, message, 404)
        except errors.PolicyError:
            return sign_in_to_view(api, approval_id, "Wrong email, password, org or key", 401)

    return r
