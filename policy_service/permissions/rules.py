"""Toolkits, their catalogue (tools, resources, resource templates, prompts), org-wide
defaults and role overrides. Every kind shares the same rules, keyed by the item's id."""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from sqlalchemy import delete, func, select
from sqlalchemy.ext.asyncio import AsyncSession

from policy_service.errors import InvalidArgument, NotFound
from policy_service.identity.directory import check_slug, role
from policy_service.identity.principal import Principal
from policy_service.permissions.lookup import TOOL_KIND
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

CATALOGUE_KINDS = (TOOL_KIND, "resource", "resource_template", "prompt")


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
    toolkit = await find_toolkit_in(session, org_id, fields["slug"])
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


async def find_toolkit_in(session: AsyncSession, org_id: str, slug: str) -> Toolkit | None:
    return (
        await session.execute(select(Toolkit).where(Toolkit.org_id == org_id, Toolkit.slug == slug))
    ).scalar_one_or_none()


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
    """A toolkit the caller's org may set rules for: its own, or a public one (the operator:
    any, for platform operations)."""
    toolkit, _ = await find_toolkit(session, org_slug, slug)
    if not (principal.is_operator or can_see_toolkit(toolkit.visibility, toolkit.org_id, principal.org_id)):
        raise NotFound("toolkit not found", "TOOLKIT_NOT_FOUND")
    return toolkit


async def tool_counts(session: AsyncSession, toolkit_ids: list[str]) -> dict[str, int]:
    """Tools per toolkit (other catalogue kinds are not counted)."""
    if not toolkit_ids:
        return {}
    rows = await session.execute(
        select(Tool.toolkit_id, func.count())
        .where(Tool.toolkit_id.in_(toolkit_ids), Tool.kind == TOOL_KIND)
        .group_by(Tool.toolkit_id)
    )
    return dict(rows.all())


@dataclass(frozen=True, slots=True)
class SyncResult:
    added: int
    updated: int
    removed: int


def check_kind(kind: str) -> str:
    """The catalogue kind a request names; empty means a tool."""
    kind = kind or TOOL_KIND
    if kind not in CATALOGUE_KINDS:
        raise InvalidArgument(f"kind must be one of {', '.join(CATALOGUE_KINDS)}", "BAD_KIND")
    return kind


def _check_name(kind: str, name: str) -> str:
    limit = 128 if kind == TOOL_KIND else 512
    if not isinstance(name, str) or not name or len(name) > limit:
        raise InvalidArgument(f"{kind} names must be 1–{limit} characters", "BAD_TOOL_NAME")
    return name


def _new_item_permission(kind: str, spec: dict[str, Any], toolkit: Toolkit) -> str:
    """Tools follow `new_tool_permission`; resources, templates and prompts are reads with no
    side effects, so they are allowed unless the owner blocks everything new."""
    declared = spec.get("default_permission")
    if declared:
        return check_permission(declared)
    if kind == TOOL_KIND:
        return new_tool_permission(spec.get("annotations_json", ""), toolkit.new_tool_permission)
    return "blocked" if toolkit.new_tool_permission == "blocked" else "always_allow"


def _apply_spec(item: Tool, spec: dict[str, Any]) -> None:
    item.title = (spec.get("title") or "")[:200]
    item.description = spec.get("description", "")
    item.input_schema_json = _check_json(spec.get("input_schema_json", ""), "input schema") or '{"type":"object"}'
    item.output_schema_json = _check_json(spec.get("output_schema_json", ""), "output schema")
    item.annotations_json = _check_json(spec.get("annotations_json", ""), "annotations")
    item.spec_json = _check_json(spec.get("spec_json", ""), "item definition")


async def sync_tools(
    session: AsyncSession,
    toolkit: Toolkit,
    tools: list[dict[str, Any]],
    prune: bool,
    kinds: Sequence[str] = (TOOL_KIND,),
) -> SyncResult:
    """Upserts catalogue items (each spec's `kind`, default tool). Pruning removes only items
    of `kinds`, so a tools-only sync never drops resources or prompts."""
    covered = {check_kind(k) for k in kinds} or {TOOL_KIND}
    existing = {
        (t.kind, t.name): t
        for t in (
            await session.execute(select(Tool).where(Tool.toolkit_id == toolkit.id, Tool.kind.in_(covered)))
        ).scalars()
    }
    added = updated = 0
    seen: set[tuple[str, str]] = set()
    for spec in tools:
        kind = check_kind(spec.get("kind", ""))
        if kind not in covered:
            raise InvalidArgument(f"a {kind} was sent but the sync covers only {sorted(covered)}", "BAD_KIND")
        key = (kind, _check_name(kind, spec["name"]))
        if key in seen:
            continue  # a backend that lists an item twice: the first definition wins
        seen.add(key)
        item = existing.get(key)
        if item is None:
            permission = _new_item_permission(kind, spec, toolkit)
            item = Tool(toolkit_id=toolkit.id, kind=kind, name=key[1], default_permission=permission)
            session.add(item)
            added += 1
        else:
            updated += 1
            if spec.get("default_permission"):
                item.default_permission = check_permission(spec["default_permission"])
        _apply_spec(item, spec)
    removed = 0
    if prune:
        for key, item in existing.items():
            if key not in seen:
                await session.delete(item)
                removed += 1
    await session.flush()
    return SyncResult(added, updated, removed)


async def find_tool(session: AsyncSession, toolkit: Toolkit, name: str, kind: str = TOOL_KIND) -> Tool:
    """The catalogue item of `kind` named `name` (a tool unless told otherwise)."""
    kind = check_kind(kind)
    tool = (
        await session.execute(select(Tool).where(Tool.toolkit_id == toolkit.id, Tool.kind == kind, Tool.name == name))
    ).scalar_one_or_none()
    if tool is None:
        raise NotFound(f"{kind} {name!r} not found", "TOOL_NOT_FOUND")
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
