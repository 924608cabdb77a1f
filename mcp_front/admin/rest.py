"""The admin REST API (/api/v1): the policy service's admin RPCs over HTTP, scoped to the
caller's org. Authorization is the policy service's; this layer only translates."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Annotated, Any, TypeVar
from urllib.parse import quote

from fastapi import APIRouter, FastAPI, HTTPException, Request
from fastapi.exception_handlers import http_exception_handler
from fastapi.exceptions import RequestValidationError
from fastapi.openapi.docs import get_swagger_ui_html
from fastapi.responses import HTMLResponse, RedirectResponse, Response, StreamingResponse
from pydantic import BaseModel, Field
from starlette.exceptions import HTTPException as StarletteHTTPException
from swagger_ui_bundle import swagger_ui_path

from mcp_front.admin.auth import ConsoleAuth
from mcp_front.admin.headers import SecurityHeaders, docs_policy
from mcp_front.admin.inputs import (
    ApprovalStatus,
    AuditSource,
    Ident,
    Name,
    PageSize,
    PageToken,
    Prose,
    Timestamp,
    TtlSeconds,
)
from mcp_front.admin.templates import render
from mcp_front.backends.catalogue_sync import sync_catalogue
from mcp_front.backends.upstream import UpstreamError
from mcp_front.edge.admin_guard import validation_error
from mcp_front.edge.request import request_id_of
from policy_service import errors
from policy_service.audit_changes import change_of
from policy_service.client import Permission, PolicyClient, PolicyUnavailable
from policy_service.toolkits.egress import EgressPolicy
from policy_service.wire_enums import message_to_dict

T = TypeVar("T")
_STATUS = {
    errors.Unauthenticated: 401,
    errors.PermissionDenied: 403,
    errors.NotFound: 404,
    errors.InvalidArgument: 400,
    errors.AlreadyExists: 409,
    errors.FailedPrecondition: 409,
    errors.RateLimited: 429,
    PolicyUnavailable: 503,
}


SWAGGER_PREFIX = "/console/static/swagger"
_SWAGGER_FILES = {
    "swagger-ui-bundle.js": "text/javascript; charset=utf-8",
    "swagger-ui.css": "text/css; charset=utf-8",
    "favicon-32x32.png": "image/png",
}
_DEPRECATED_KEYS = {"Deprecation": "true", "Link": '</api/v1/api-keys>; rel="successor-version"'}


def to_json(message: Any) -> dict[str, Any]:
    return message_to_dict(message)


def audit_record(record: Any) -> dict[str, Any]:
    """An audit record as JSON, with an admin action's before/after parsed into `change`."""
    change = change_of(record.method, record.response_json)
    return to_json(record) | ({"change": change} if change is not None else {})


class DenyBody(BaseModel):
    reason: Prose


class KeyBody(BaseModel):
    name: Name
    role: Ident = "member"
    ttl_seconds: TtlSeconds = 0


class RuleBody(BaseModel):
    toolkit: str = Field(description="OWNER_ORG/TOOLKIT", max_length=128, pattern=r"^[a-z0-9-]+/[a-z0-9-]+$")
    tool: Annotated[Ident, Field(min_length=1)]
    permission: str = Field(pattern=f"^({'|'.join(Permission)})$")
    role: Ident = ""


class AdminApi:
    def __init__(
        self,
        policy_addr: str,
        timeout: float,
        auth: ConsoleAuth,
        egress: EgressPolicy | None = None,
        service_token: str = "",
    ) -> None:
        self.addr = policy_addr
        # Sent on sign-in RPCs: the policy service believes the client address the front
        # states only from a service identity (otherwise it counts the front's own address).
        self.service_token = service_token
        self.timeout = timeout
        self.auth = auth
        self.egress = egress or EgressPolicy()  # where catalogue syncs may reach
        self.single_sign_on = False  # the sign-in page offers /console/sso (admin/sso.py)

    def client(self, request: Request, credential: str, source: str) -> PolicyClient:
        """A policy client acting as `credential`, stating this HTTP request's facts (request
        id, client address, user agent) and channel for the admin-action audit row; the
        service token beside them is what makes the policy service believe them (ADR 0035)."""
        return PolicyClient(
            self.addr,
            credential,
            self.timeout,
            source=source,
            service_token=self.service_token,
            request_id=request_id_of(request.scope),
            client_address=request.client.host if request.client else "",
            user_agent=request.headers.get("user-agent", ""),
        )

    async def call(
        self, request: Request, fn: Callable[[PolicyClient], Awaitable[T]], form_csrf: str | None = None
    ) -> T:
        """Run one admin RPC as the caller; domain errors become HTTP statuses."""
        caller = self.auth.caller(request, form_csrf)
        source = "console" if caller.via_cookie else "api"
        async with self.client(request, caller.credential, source) as client:
            try:
                return await fn(client)
            except errors.PolicyError as exc:
                status = next((code for kind, code in _STATUS.items() if isinstance(exc, kind)), 500)
                raise HTTPException(status, {"reason": exc.reason, "message": exc.message}) from None


def build_router(api: AdminApi) -> APIRouter:
    r = APIRouter(prefix="/api/v1")

    @r.get("/whoami")
    async def whoami(request: Request) -> dict[str, Any]:
        return to_json(await api.call(request, lambda c: c.whoami()))

    @r.get("/approvals")
    async def list_approvals(
        request: Request, status: ApprovalStatus = "", page_size: PageSize = 50, page_token: PageToken = ""
    ) -> dict[str, Any]:
        page = await api.call(request, lambda c: c.list_approvals("", status, page_size, page_token))
        return {"approvals": [], **to_json(page)}  # an empty queue is `[]`, not a missing key

    @r.get("/approvals/{approval_id}")
    async def get_approval(request: Request, approval_id: Ident) -> dict[str, Any]:
        return to_json(await api.call(request, lambda c: c.get_approval(approval_id)))

    @r.post("/approvals/{approval_id}/approve")
    async def approve(request: Request, approval_id: Ident) -> dict[str, Any]:
        return to_json(await api.call(request, lambda c: c.decide_approval(approval_id, True)))

    @r.post("/approvals/{approval_id}/deny")
    async def deny(request: Request, approval_id: Ident, body: DenyBody) -> dict[str, Any]:
        return to_json(await api.call(request, lambda c: c.decide_approval(approval_id, False, body.reason)))

    @r.get("/audit")
    async def audit(
        request: Request,
        toolkit: Ident = "",
        tool: Ident = "",
        status: Ident = "",
        actor_id: Ident = "",
        approval_id: Ident = "",
        call_id: Ident = "",
        source: AuditSource = "",
        since: Timestamp = None,
        until: Timestamp = None,
        page_size: PageSize = 50,
        page_token: PageToken = "",
    ) -> dict[str, Any]:
        """`source`: mcp (client calls), or the channel of an admin action (api, console, cli, grpc)."""
        page = await api.call(
            request,
            lambda c: c.query_audit(
                since=since,
                until=until,
                toolkit=toolkit,
                tool=tool,
                status=status,
                actor_id=actor_id,
                approval_id=approval_id,
                call_id=call_id,
                source=source,
                page_size=page_size,
                page_token=page_token,
            ),
        )
        return {**to_json(page), "records": [audit_record(r) for r in page.records]}

    @r.get("/audit/export")
    async def export(
        request: Request, toolkit: Ident = "", tool: Ident = "", status: Ident = "", source: AuditSource = ""
    ) -> StreamingResponse:
        await api.call(request, lambda c: c.whoami())  # authenticate before streaming starts

        async def page_of(token: str) -> Any:
            return await api.call(
                request,
                lambda c: c.query_audit(
                    toolkit=toolkit, tool=tool, status=status, source=source, page_size=500, page_token=token
                ),
            )

        async def lines() -> AsyncIterator[str]:
            token = ""
            while True:
                page = await page_of(token)
                for record in page.records:
                    yield json.dumps(audit_record(record)) + "\n"
                token = page.next_page_token
                if not token:
                    return

        return StreamingResponse(lines(), media_type="application/x-ndjson")

    # Deprecated alias of /api/v1/api-keys (people_rest.py), kept so existing scripts work.
    @r.get("/keys", deprecated=True)
    async def list_keys(request: Request, response: Response) -> list[dict[str, Any]]:
        response.headers.update(_DEPRECATED_KEYS)
        return [to_json(k) for k in await api.call(request, lambda c: c.list_api_keys())]

    @r.post("/keys", status_code=201, deprecated=True)
    async def create_key(request: Request, response: Response, body: KeyBody) -> dict[str, Any]:
        response.headers.update(_DEPRECATED_KEYS)
        return to_json(await api.call(request, lambda c: c.create_api_key("", body.name, body.role, body.ttl_seconds)))

    @r.delete("/keys/{key_id}", deprecated=True)
    async def revoke_key(request: Request, response: Response, key_id: Ident) -> dict[str, Any]:
        response.headers.update(_DEPRECATED_KEYS)
        return to_json(await api.call(request, lambda c: c.revoke_api_key("", key_id)))

    @r.get("/toolkits")
    async def toolkits(request: Request) -> list[dict[str, Any]]:
        return [to_json(t) for t in await api.call(request, lambda c: c.list_toolkits("", include_public=True))]

    @r.get("/toolkits/{org}/{slug}/tools")
    async def tools(request: Request, org: Ident, slug: Ident) -> list[dict[str, Any]]:
        return [to_json(t) for t in await api.call(request, lambda c: c.list_catalogue(org, slug))]

    @r.post("/toolkits/{org}/{slug}/sync")
    async def sync(request: Request, org: str, slug: str, prune: bool = False) -> dict[str, Any]:
        """Fetch the backend's tools/list and store it as the toolkit's catalogue."""
        try:
            result = await api.call(request, lambda c: sync_catalogue(c, org, slug, prune, api.egress))
        except UpstreamError as exc:
            raise HTTPException(502, {"reason": "BACKEND_ERROR", "message": exc.public}) from None
        return to_json(result)

    @r.get("/permissions")
    async def rules(request: Request) -> list[dict[str, Any]]:
        return [to_json(x) for x in await api.call(request, lambda c: c.list_permission_rules())]

    @r.put("/permissions")
    async def set_rule(request: Request, body: RuleBody) -> dict[str, Any]:
        owner, toolkit = body.toolkit.split("/", 1)
        if body.role:
            rule = await api.call(
                request, lambda c: c.set_role_override(body.role, owner, toolkit, body.tool, body.permission)
            )
        else:
            rule = await api.call(request, lambda c: c.set_org_default(owner, toolkit, body.tool, body.permission))
        return to_json(rule)

    return r


def build_admin_app(api: AdminApi, *console_routers: APIRouter) -> FastAPI:
    app = FastAPI(title="MonoMCP admin API", version="1", docs_url=None, openapi_url="/openapi.json")
    from mcp_front.admin.domains_rest import build_domains_router  # these build on AdminApi
    from mcp_front.admin.notifications_rest import build_notifications_router
    from mcp_front.admin.people_rest import build_people_router
    from mcp_front.admin.policy_rest import build_policy_router

    app.include_router(build_router(api))
    app.include_router(build_people_router(api))
    app.include_router(build_domains_router(api))
    app.include_router(build_policy_router(api))
    app.include_router(build_notifications_router(api))
    for router in console_routers:
        app.include_router(router, include_in_schema=False)
    docs = get_swagger_ui_html(
        openapi_url="/openapi.json",
        title="MonoMCP admin API",
        swagger_js_url=f"{SWAGGER_PREFIX}/swagger-ui-bundle.js",
        swagger_css_url=f"{SWAGGER_PREFIX}/swagger-ui.css",
        swagger_favicon_url=f"{SWAGGER_PREFIX}/favicon-32x32.png",
    )
    docs_csp = docs_policy(bytes(docs.body).decode())

    @app.get(SWAGGER_PREFIX + "/{name}", include_in_schema=False)
    async def swagger_asset(name: str) -> Response:
        """Swagger UI's files from the installed package: /docs works offline."""
        if name not in _SWAGGER_FILES:
            raise HTTPException(404, "no such file")
        return Response((swagger_ui_path / name).read_bytes(), media_type=_SWAGGER_FILES[name])

    @app.get("/docs", include_in_schema=False)
    async def swagger_ui() -> Response:
        return HTMLResponse(docs.body, headers={"Content-Security-Policy": docs_csp})

    # Starlette's class: an unknown /console path (Starlette raises it) is a page too, not JSON.
    app.add_exception_handler(StarletteHTTPException, _console_sign_in_again(api.auth))  # type: ignore[arg-type]
    app.add_exception_handler(RequestValidationError, validation_error)
    app.add_middleware(SecurityHeaders)
    return app


_HINTS = {
    401: "Your session ended (signed out, expired, or its key was revoked): sign in again.",
    403: "Your credential may not do this, or the form came from another site: reload the page and try again.",
    404: "It does not exist, or it belongs to another org.",
    409: "Someone changed it first: reload to see where it stands.",
    429: "Too many requests: wait a little and try again.",
    503: "The policy service is unavailable: try again shortly.",
}


def error_page(status: int, detail: Any, signed_in: bool = False) -> Response:
    """A console error as a page a person reads, not JSON; with the console's links while a
    session is open (no RPC here: the error may be that the policy service is down)."""
    message = detail.get("message", str(detail)) if isinstance(detail, dict) else str(detail)
    return render(
        "error.html", status, title=f"Error {status}", message=message, hint=_HINTS.get(status, ""), nav=signed_in
    )


def _console_sign_in_again(auth: ConsoleAuth) -> Callable[[Request, StarletteHTTPException], Awaitable[Response]]:
    """A console page whose session was refused (signed out, expired, key revoked) sends
    the browser to sign in again and drops the dead cookie; everything else answers as usual."""

    async def handle(request: Request, exc: StarletteHTTPException) -> Response:
        console = request.url.path.startswith("/console") and request.url.path != "/console/static"
        if exc.status_code == 401 and request.method == "GET" and console:
            response = RedirectResponse(f"/console/login?next={quote(request.url.path)}", status_code=303)
            auth.clear_session(response)
            return response
        if console and "text/html" in request.headers.get("accept", ""):
            return error_page(exc.status_code, exc.detail, auth.optional_caller(request) is not None)
        return await http_exception_handler(request, exc)

    return handle
