"""Admin RPCs for toolkits, their catalogue, org defaults and role overrides."""

from __future__ import annotations

from typing import Protocol

import grpc
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from policy_service._generated.monomcp.policy.v1 import admin_pb2
from policy_service.api import convert, validation
from policy_service.api.admin_base import AdminBase
from policy_service.api.errors import translated
from policy_service.errors import InvalidArgument, PermissionDenied
from policy_service.identity.principal import Principal
from policy_service.permissions import rules
from policy_service.permissions.admin_access import admin_org
from policy_service.permissions.lookup import TOOL_KIND
from policy_service.storage.models import Organization, OrgToolDefault, Role, RoleOverride, Tool, Toolkit
from policy_service.toolkits import stdio_backend, stdio_guard
from policy_service.toolkits.backend_target import check_backend_headers, check_backend_url
from policy_service.toolkits.new_tools import DEFAULT_NEW_TOOL_PERMISSION


def _manages(principal: Principal, t: Toolkit) -> bool:
    """Admins of the owning org and the operator; only they see the backend URL."""
    return principal.is_operator or (principal.is_admin and principal.org_id == t.org_id)


def _backend(t: Toolkit, principal: Principal) -> tuple[str, str]:
    """(backend_url as this caller may see it, transport). A stdio address carries the
    environment: only the operator sees it whole, org admins see the command."""
    if not t.backend_url:
        return "", ""
    if not stdio_backend.is_stdio(t.backend_url):
        return (t.backend_url if _manages(principal, t) else ""), "http"
    if principal.is_operator:
        return t.backend_url, "stdio"
    return (stdio_backend.display_address(t.backend_url) if _manages(principal, t) else ""), "stdio"


def _stdio_address(request: admin_pb2.UpsertToolkitRequest, principal: Principal) -> str:
    """The validated `stdio:v1:` address of the request's command, or "" when it names none.
    Only the operator may register one: it runs code on the gateway's hosts."""
    if not request.HasField("backend_stdio"):
        return ""
    if not principal.is_operator:
        raise PermissionDenied(
            "only the operator can register a stdio backend: it runs a command on the gateway's hosts",
            "STDIO_NEEDS_OPERATOR",
        )
    if request.backend_url:
        raise InvalidArgument("a toolkit has either backend_url or backend_stdio, not both", "BAD_STDIO_BACKEND")
    stdio = request.backend_stdio
    spec = stdio_backend.StdioSpec(
        command=stdio.command,
        args=tuple(stdio.args),
        env=dict(stdio.env),
        cwd=stdio.cwd,
        memory_limit_mb=stdio.memory_limit_mb,
        cpu_limit_seconds=stdio.cpu_limit_seconds,
        pool_size=stdio.pool_size or 1,
    )
    return stdio_backend.to_address(stdio_backend.validated(spec))


def _toolkit(t: Toolkit, org_slug: str, count: int, principal: Principal) -> admin_pb2.Toolkit:
    manageable = _manages(principal, t)
    backend_url, transport = _backend(t, principal)
    return admin_pb2.Toolkit(
        org_slug=org_slug,
        slug=t.slug,
        name=t.name,
        description=t.description,
        visibility=t.visibility,
        backend_url=backend_url,
        backend_timeout_seconds=t.backend_timeout_seconds,
        tool_count=count,
        new_tool_permission=convert.PERMISSION_TO_PB[t.new_tool_permission or DEFAULT_NEW_TOOL_PERMISSION],
        manageable=manageable,
        backend_transport=transport,
    )


def _tool(t: Tool) -> admin_pb2.CatalogueTool:
    return admin_pb2.CatalogueTool(
        name=t.name,
        title=t.title,
        description=t.description,
        input_schema_json=t.input_schema_json,
        output_schema_json=t.output_schema_json,
        annotations_json=t.annotations_json,
        default_permission=convert.PERMISSION_TO_PB[t.default_permission],
        kind=t.kind,
        spec_json=t.spec_json,
    )


def _permission(value: int) -> str:
    return rules.check_permission(convert.PERMISSION_FROM_PB.get(value, ""))  # type: ignore[call-overload]


class _RuleRequest(Protocol):
    """What every org-default and role-override request names: a catalogue item."""

    @property
    def org_slug(self) -> str: ...
    @property
    def toolkit_org_slug(self) -> str: ...
    @property
    def toolkit_slug(self) -> str: ...
    @property
    def tool(self) -> str: ...
    @property
    def kind(self) -> str: ...


def _rule(
    org_slug: str, request: admin_pb2.SetOrgDefaultRequest | admin_pb2.SetRoleOverrideRequest, role: str = ""
) -> admin_pb2.PermissionRule:
    """The rule a Set* request wrote, as ListPermissionRules shows it."""
    return admin_pb2.PermissionRule(
        org_slug=org_slug,
        role=role,
        toolkit_org_slug=request.toolkit_org_slug or org_slug,
        toolkit_slug=request.toolkit_slug,
        tool=request.tool,
        permission=request.permission,
        kind=rules.check_kind(request.kind),
    )


class ToolkitRpcs(AdminBase):
    @translated
    async def UpsertToolkit(
        self, request: admin_pb2.UpsertToolkitRequest, context: grpc.aio.ServicerContext
    ) -> admin_pb2.Toolkit:
        principal = await self._principal(context)
        validation.text(request.slug, "slug", 63)
        validation.text(request.name, "name")
        validation.text(request.description, "description", 4000, multiline=True)
        headers = dict(request.backend_headers)
        new_default = _permission(request.new_tool_permission) if request.new_tool_permission else ""
        async with self._sessions() as session:
            org = await admin_org(session, principal, request.org_slug)  # authorize before any DNS lookup
            stdio_guard.check_edit(
                await rules.find_toolkit_in(session, org.id, request.slug),
                principal,
                visibility=request.visibility,
                backend_url=request.backend_url,
                backend_headers=headers,
                backend_timeout_seconds=request.backend_timeout_seconds,
                new_tool_permission=new_default,
            )
        stdio_address = _stdio_address(request, principal)
        check_backend_headers(headers)
        if request.backend_url:
            await check_backend_url(request.backend_url, self._egress)
        async with self._tx() as session:
            org = await admin_org(session, principal, request.org_slug)
            toolkit = await rules.upsert_toolkit(
                session,
                org.id,
                {
                    "slug": request.slug,
                    "name": request.name,
                    "description": request.description,
                    "visibility": request.visibility,
                    "backend_url": request.backend_url,
                    "backend_headers": headers,
                    "backend_timeout_seconds": request.backend_timeout_seconds,
                },
            )
            if stdio_address:
                toolkit.backend_url = stdio_address
            if new_default:
                toolkit.new_tool_permission = new_default
            count = (await rules.tool_counts(session, [toolkit.id])).get(toolkit.id, 0)
            return _toolkit(toolkit, org.slug, count, principal)

    @translated
    async def ListToolkits(
        self, request: admin_pb2.ListToolkitsRequest, context: grpc.aio.ServicerContext
    ) -> admin_pb2.ListToolkitsResponse:
        principal = await self._principal(context)
        async with self._sessions() as session:
            org = await admin_org(session, principal, request.org_slug)
            cond = Toolkit.org_id == org.id
            if request.include_public:
                cond = cond | (Toolkit.visibility == "public")
            rows = (
                await session.execute(
                    select(Toolkit, Organization.slug)
                    .join(Organization, Organization.id == Toolkit.org_id)
                    .where(cond)
                    .order_by(Organization.slug, Toolkit.slug)
                )
            ).all()
            counts = await rules.tool_counts(session, [t.id for t, _ in rows])
        toolkits = [_toolkit(t, s, counts.get(t.id, 0), principal) for t, s in rows]
        return admin_pb2.ListToolkitsResponse(toolkits=toolkits)

    @translated
    async def GetToolkit(
        self, request: admin_pb2.GetToolkitRequest, context: grpc.aio.ServicerContext
    ) -> admin_pb2.Toolkit:
        principal = await self._principal(context)
        async with self._sessions() as session:
            toolkit = await rules.visible_toolkit(
                session, principal, request.org_slug or principal.org_slug, request.slug
            )
            count = (await rules.tool_counts(session, [toolkit.id])).get(toolkit.id, 0)
            return _toolkit(toolkit, request.org_slug or principal.org_slug, count, principal)

    @translated
    async def SyncTools(
        self, request: admin_pb2.SyncToolsRequest, context: grpc.aio.ServicerContext
    ) -> admin_pb2.SyncToolsResponse:
        principal = await self._principal(context)
        for t in request.tools:
            validation.text(t.name, "tool name", 512)
            validation.text(t.title, "tool title")
        async with self._tx() as session:
            org = await admin_org(session, principal, request.org_slug)
            toolkit, _ = await rules.find_toolkit(session, org.slug, request.toolkit_slug)
            stdio_guard.check_owner_defaults(toolkit, principal)
            specs = [
                {
                    "name": t.name,
                    "title": t.title,
                    "description": t.description,
                    "input_schema_json": t.input_schema_json,
                    "output_schema_json": t.output_schema_json,
                    "annotations_json": t.annotations_json,
                    "default_permission": convert.PERMISSION_FROM_PB.get(t.default_permission, ""),
                    "kind": t.kind,
                    "spec_json": t.spec_json,
                }
                for t in request.tools
            ]
            kinds = list(request.kinds) or [TOOL_KIND]
            result = await rules.sync_tools(session, toolkit, specs, request.prune, kinds)
        return admin_pb2.SyncToolsResponse(added=result.added, updated=result.updated, removed=result.removed)

    @translated
    async def ListCatalogue(
        self, request: admin_pb2.ListCatalogueRequest, context: grpc.aio.ServicerContext
    ) -> admin_pb2.ListCatalogueResponse:
        principal = await self._principal(context)
        async with self._sessions() as session:
            toolkit = await rules.visible_toolkit(
                session, principal, request.org_slug or principal.org_slug, request.toolkit_slug
            )
            query = select(Tool).where(Tool.toolkit_id == toolkit.id).order_by(Tool.kind, Tool.name)
            if request.kind != "*":
                query = query.where(Tool.kind == rules.check_kind(request.kind))
            tools = (await session.execute(query)).scalars()
            return admin_pb2.ListCatalogueResponse(tools=[_tool(t) for t in tools])

    @translated
    async def SetToolDefault(
        self, request: admin_pb2.SetToolDefaultRequest, context: grpc.aio.ServicerContext
    ) -> admin_pb2.CatalogueTool:
        principal = await self._principal(context)
        async with self._tx() as session:
            org = await admin_org(session, principal, request.org_slug)
            toolkit, _ = await rules.find_toolkit(session, org.slug, request.toolkit_slug)
            stdio_guard.check_owner_defaults(toolkit, principal)
            tool = await rules.find_tool(session, toolkit, request.tool, request.kind)
            tool.default_permission = _permission(request.permission)
            return _tool(tool)

    async def _rule_target(
        self, session: AsyncSession, principal: Principal, request: _RuleRequest
    ) -> tuple[Organization, Toolkit, Tool]:
        org = await admin_org(session, principal, request.org_slug)
        toolkit = await rules.visible_toolkit(
            session, principal, request.toolkit_org_slug or org.slug, request.toolkit_slug
        )
        return org, toolkit, await rules.find_tool(session, toolkit, request.tool, request.kind)

    @translated
    async def SetOrgDefault(
        self, request: admin_pb2.SetOrgDefaultRequest, context: grpc.aio.ServicerContext
    ) -> admin_pb2.PermissionRule:
        principal = await self._principal(context)
        async with self._tx() as session:
            org, _, tool = await self._rule_target(session, principal, request)
            await rules.set_org_default(session, org.id, tool, _permission(request.permission))
        return _rule(org.slug, request)

    @translated
    async def ClearOrgDefault(
        self, request: admin_pb2.ClearOrgDefaultRequest, context: grpc.aio.ServicerContext
    ) -> admin_pb2.ClearResponse:
        principal = await self._principal(context)
        async with self._tx() as session:
            org, _, tool = await self._rule_target(session, principal, request)
            return admin_pb2.ClearResponse(removed=await rules.clear_org_default(session, org.id, tool))

    @translated
    async def SetRoleOverride(
        self, request: admin_pb2.SetRoleOverrideRequest, context: grpc.aio.ServicerContext
    ) -> admin_pb2.PermissionRule:
        principal = await self._principal(context)
        async with self._tx() as session:
            org, _, tool = await self._rule_target(session, principal, request)
            await rules.set_role_override(session, org.id, request.role, tool, _permission(request.permission))
        return _rule(org.slug, request, request.role)

    @translated
    async def ClearRoleOverride(
        self, request: admin_pb2.ClearRoleOverrideRequest, context: grpc.aio.ServicerContext
    ) -> admin_pb2.ClearResponse:
        principal = await self._principal(context)
        async with self._tx() as session:
            org, _, tool = await self._rule_target(session, principal, request)
            return admin_pb2.ClearResponse(removed=await rules.clear_role_override(session, org.id, request.role, tool))

    @translated
    async def ListPermissionRules(
        self, request: admin_pb2.ListPermissionRulesRequest, context: grpc.aio.ServicerContext
    ) -> admin_pb2.ListPermissionRulesResponse:
        principal = await self._principal(context)
        async with self._sessions() as session:
            org = await admin_org(session, principal, request.org_slug)
            tk_org = Organization.__table__.alias("tk_org")
            base = (
                select(Tool.name, Toolkit.slug, tk_org.c.slug, Tool.kind)
                .join(Toolkit, Toolkit.id == Tool.toolkit_id)
                .join(tk_org, tk_org.c.id == Toolkit.org_id)
            )
            defaults = await session.execute(
                base.add_columns(OrgToolDefault.permission)
                .join(OrgToolDefault, OrgToolDefault.tool_id == Tool.id)
                .where(OrgToolDefault.org_id == org.id)
            )
            overrides = await session.execute(
                base.add_columns(RoleOverride.permission, Role.name)
                .join(RoleOverride, RoleOverride.tool_id == Tool.id)
                .join(Role, Role.id == RoleOverride.role_id)
                .where(RoleOverride.org_id == org.id)
            )
            out = [
                admin_pb2.PermissionRule(
                    org_slug=org.slug,
                    toolkit_org_slug=o,
                    toolkit_slug=k,
                    tool=t,
                    permission=convert.PERMISSION_TO_PB[p],
                    kind=kind,
                )
                for t, k, o, kind, p in defaults.all()
            ] + [
                admin_pb2.PermissionRule(
                    org_slug=org.slug,
                    role=r,
                    toolkit_org_slug=o,
                    toolkit_slug=k,
                    tool=t,
                    permission=convert.PERMISSION_TO_PB[p],
                    kind=kind,
                )
                for t, k, o, kind, p, r in overrides.all()
            ]
        return admin_pb2.ListPermissionRulesResponse(rules=out)
