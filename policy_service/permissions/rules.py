"""Toolkits, their tool catalogue, org-wide defaults and role overrides."""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any

from sqlalchemy import delete, func, select
from sqlalchemy.ext.asyncio import AsyncSession

from policy_service.errors import InvalidArgument, NotFound
from policy_service.identity.directory import check_slug, role
from policy_service.identity.principal import Principal
from policy_service.permissions.resolver import can_see_toolkit
from policy_service.storage.models import (
    PERMISSIONS,
    VISIBILITIES,
    Organization,
    OrgToolDefault,
    RoleOverride,
    Tool,
    Toolkit,
)
from policy_service.toolkits.new_tools import new_tool_permission


def check_permission(value: str) -> str:
    if value not in PERMISSIONS:
        raise InvalidArgument(f"permission must be one of {', '.join(PERMISSIONS)}", "BAD_PERMISSION")
    return value


def _check_json(text: str, what: str) -> str:
    if not text:
        return ""
    try:
        json.loads(text)
    except ValueError as exc:
        raise InvalidArgument(f"{what} is not valid JSON", "BAD_JSON") from exc
    return text


async def upsert_toolkit(session: AsyncSession, org_id: str, fields: dict[str, Any]) -> Toolkit:
    check_slug(fields["slug"], "toolkit slug")
    if fields.get("visibility") and fields["visibility"] not in VISIBILITIES:
        raise InvalidArgument("visibility must be public or private", "BAD_VISIBILITY")
    url = fields.get("backend_url") or ""
    if url and not url.startswith(("http://", "https://")):
        raise InvalidArgument("backend_url must be an http(s) URL", "BAD_URL")
    toolkit = (
        await session.execute(select(Toolkit).where(Toolkit.org_id == org_id, Toolkit.slug == fields["slug"]))
    ).scalar_one_or_none()
    if toolkit is None:
        toolkit = Toolkit(org_id=org_id, slug=fields["slug"], name=fields.get("name") or fields["slug"])
        session.add(toolkit)
    for attr in ("name", "description", "visibility", "backend_url"):
        if fields.get(attr):
            setattr(toolkit, attr, fields[attr])
    if fields.get("backend_headers"):
        toolkit.backend_headers_json = json.dumps(dict(fields["backend_headers"]))
    if fields.get("backend_timeout_seconds"):
        toolkit.backend_timeout_seconds = float(fields["backend_timeout_seconds"])
    await session.flush()
    return toolkit


async def find_toolkit(session: AsyncSession, org_slug: str, slug: str) -> tuple[Toolkit, str]:
    row = (
        await session.execute(
            select(Toolkit, Organization.slug)
            .join(Organization, Organization.id == Toolkit.org_id)
            .where(Organization.slug == org_slug, Toolkit.slug == slug)
        )
    ).first()
    if row is None:
        raise NotFound("toolkit not found", "TOOLKIT_NOT_FOUND")
    return row[0], row[1]


async def visible_toolkit(session: AsyncSession, principal: Principal, org_slug: str, slug: str) -> Toolkit:
    """A toolkit the caller's org may set rules for: its own, or a public one."""
    toolkit, _ = await find_toolkit(session, org_slug, slug)
    if not can_see_toolkit(toolkit.visibility, toolkit.org_id, principal.org_id, principal.is_operator):
        raise NotFound("toolkit not found", "TOOLKIT_NOT_FOUND")
    return toolkit


async def tool_counts(session: AsyncSession, toolkit_ids: list[str]) -> dict[str, int]:
    if not toolkit_ids:
        return {}
    rows = await session.execute(
        select(Tool.toolkit_id, func.count()).where(Tool.toolkit_id.in_(toolkit_ids)).group_by(Tool.toolkit_id)
    )
    return dict(rows.all())


@dataclass(frozen=True, slots=True)
class SyncResult:
    added: int
    updated: int
    removed: int


async def sync_tools(session: AsyncSession, toolkit: Toolkit, tools: list[dict[str, Any]], prune: bool) -> SyncResult:
    existing = {t.name: t for t in (await session.execute(select(Tool).where(Tool.toolkit_id == toolkit.id))).scalars()}
    added = updated = 0
    seen: set[str] = set()
    for spec in tools:
        name = spec["name"]
        if not name or len(name) > 128:
            raise InvalidArgument("tool names must be 1–128 characters", "BAD_TOOL_NAME")
        seen.add(name)
        tool = existing.get(name)
        if tool is None:
            declared = spec.get("default_permission")
            permission = check_permission(declared) if declared else None
            fallback = new_tool_permission(spec.get("annotations_json", ""), toolkit.new_tool_permission)
            tool = Tool(toolkit_id=toolkit.id, name=name, default_permission=permission or fallback)
            session.add(tool)
            added += 1
        else:
            updated += 1
            if spec.get("default_permission"):
                tool.default_permission = check_permission(spec["default_permission"])
        tool.title = spec.get("title", "")
        tool.description = spec.get("description", "")
        tool.input_schema_json = _check_json(spec.get("input_schema_json", ""), "input schema") or '{"type":"object"}'
        tool.output_schema_json = _check_json(spec.get("output_schema_json", ""), "output schema")
        tool.annotations_json = _check_json(spec.get("annotations_json", ""), "annotations")
    removed = 0
    if prune:
        for name, tool in existing.items():
            if name not in seen:
                await session.delete(tool)
                removed += 1
    await session.flush()
    return SyncResult(added, updated, removed)


async def find_tool(session: AsyncSession, toolkit: Toolkit, name: str) -> Tool:
    tool = (
        await session.execute(select(Tool).where(Tool.toolkit_id == toolkit.id, Tool.name == name))
    ).scalar_one_or_none()
    if tool is None:
        raise NotFound(f"tool {name!r} not found", "TOOL_NOT_FOUND")
    return tool


async def set_org_default(session: AsyncSession, org_id: str, tool: Tool, permission: str) -> None:
    check_permission(permission)
    rule = (
        await session.execute(
            select(OrgToolDefault).where(OrgToolDefault.org_id == org_id, OrgToolDefault.tool_id == tool.id)
        )
    ).scalar_one_or_none()
    if rule is None:
        session.add(OrgToolDefault(org_id=org_id, tool_id=tool.id, permission=permission))
    else:
        rule.permission = permission


async def clear_org_default(session: AsyncSession, org_id: str, tool: Tool) -> bool:
    result = await session.execute(
        delete(OrgToolDefault).where(OrgToolDefault.org_id == org_id, OrgToolDefault.tool_id == tool.id)
    )
    return bool(getattr(result, "rowcount", 0))


async def set_role_override(session: AsyncSession, org_id: str, role_name: str, tool: Tool, permission: str) -> None:
    check_permission(permission)
    target = await role(session, org_id, role_name)
    rule = (
        await session.execute(
            select(RoleOverride).where(RoleOverride.role_id == target.id, RoleOverride.tool_id == tool.id)
        )
    ).scalar_one_or_none()
    if rule is None:
        session.add(RoleOverride(org_id=org_id, role_id=target.id, tool_id=tool.id, permission=permission))
    else:
        rule.permission = permission


async def clear_role_override(session: AsyncSession, org_id: str, role_name: str, tool: Tool) -> bool:
    target = await role(session, org_id, role_name)
    result = await session.execute(
        delete(RoleOverride).where(RoleOverride.role_id == target.id, RoleOverride.tool_id == tool.id)
    )
    return bool(getattr(result, "rowcount", 0))
