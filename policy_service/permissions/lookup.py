"""Queries shared by the tools view and the items view: the visible toolkit, and the
caller's rules for a set of catalogue items."""

from __future__ import annotations

from dataclasses import dataclass
from typing import cast

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from policy_service.identity.principal import Principal
from policy_service.permissions.resolver import Effective, Permission, can_see_toolkit, effective_permission
from policy_service.storage.models import Organization, OrgToolDefault, RoleOverride, Tool, Toolkit

TOOLKIT_NOT_FOUND = "toolkit not found"
TOOL_KIND = "tool"


@dataclass(frozen=True, slots=True)
class CallerRules:
    """The caller org's defaults and the caller role's overrides for some catalogue items."""

    org_defaults: dict[str, str]
    overrides: dict[str, str]

    def effective(self, item: Tool, *, consumer: bool) -> Effective:
        return effective_permission(
            cast("Permission | None", self.overrides.get(item.id)),
            cast("Permission | None", self.org_defaults.get(item.id)),
            cast(Permission, item.default_permission),
            consumer=consumer,
        )


async def caller_rules(session: AsyncSession, principal: Principal, item_ids: list[str]) -> CallerRules:
    """One query each for the org defaults and role overrides that touch `item_ids`."""
    if not item_ids or not principal.org_id:
        return CallerRules({}, {})
    org_defaults = (
        await session.execute(
            select(OrgToolDefault.tool_id, OrgToolDefault.permission).where(
                OrgToolDefault.org_id == principal.org_id, OrgToolDefault.tool_id.in_(item_ids)
            )
        )
    ).all()
    overrides = (
        await session.execute(
            select(RoleOverride.tool_id, RoleOverride.permission).where(
                RoleOverride.role_id == principal.role_id, RoleOverride.tool_id.in_(item_ids)
            )
        )
    ).all()
    return CallerRules(dict(org_defaults), dict(overrides))


async def find_visible_toolkit(
    session: AsyncSession, principal: Principal, org_slug: str, toolkit_slug: str
) -> Toolkit | None:
    """The toolkit, or None when unknown or invisible to `principal` (indistinguishable)."""
    toolkit = (
        await session.execute(
            select(Toolkit)
            .join(Organization, Organization.id == Toolkit.org_id)
            .where(Organization.slug == org_slug, Toolkit.slug == toolkit_slug)
        )
    ).scalar_one_or_none()
    if toolkit is None or not can_see_toolkit(toolkit.visibility, toolkit.org_id, principal.org_id):
        return None
    return toolkit
