"""Who may administer what. Every admin RPC goes through `admin_org`."""

from __future__ import annotations

import re

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from policy_service.errors import InvalidArgument, NotFound, PermissionDenied
from policy_service.identity.principal import Principal
from policy_service.storage.models import Organization

_SLUG = re.compile(r"[a-z0-9][a-z0-9-]{0,62}")


async def admin_org(session: AsyncSession, principal: Principal, org_slug: str) -> Organization:
    """The org `principal` may administer: its own (admins only), or any for the operator."""
    slug = org_slug or principal.org_slug
    if not slug:
        raise InvalidArgument("org_slug is required for the operator", "ORG_REQUIRED")
    if not principal.is_operator:
        if slug != principal.org_slug:
            raise NotFound("org not found", "ORG_NOT_FOUND")
        if not principal.is_admin:
            raise PermissionDenied("this needs an org admin credential", "NOT_ADMIN")
    if not _SLUG.fullmatch(slug):  # never sent to the database (Postgres refuses NUL in text)
        raise NotFound("org not found", "ORG_NOT_FOUND")
    org = (await session.execute(select(Organization).where(Organization.slug == slug))).scalar_one_or_none()
    if org is None:
        raise NotFound("org not found", "ORG_NOT_FOUND")
    return org


def require_operator(principal: Principal) -> None:
    if not principal.is_operator:
        raise PermissionDenied("this needs the operator token", "NOT_OPERATOR")
