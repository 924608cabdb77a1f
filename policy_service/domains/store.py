"""Custom domains in the database: claim, verify, list, release.

A domain belongs to one org at a time. An unverified claim older than `CLAIM_EXPIRY` gives
way to another org's claim, so nobody can squat a domain they cannot prove."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy import delete, select
from sqlalchemy.ext.asyncio import AsyncSession

from policy_service.domains import names
from policy_service.errors import AlreadyExists, NotFound
from policy_service.storage.models import Organization, OrgDomain, utcnow

CLAIM_EXPIRY = timedelta(days=3)


@dataclass(frozen=True, slots=True)
class DomainView:
    domain: str
    org_slug: str
    token: str
    created_at: datetime
    verified_at: datetime | None


def _view(row: OrgDomain, org_slug: str) -> DomainView:
    return DomainView(row.domain, org_slug, row.verification_token, row.created_at, row.verified_at)


async def add(session: AsyncSession, org: Organization, domain: str) -> DomainView:
    name = names.normalize(domain)
    existing = (await session.execute(select(OrgDomain).where(OrgDomain.domain == name))).scalar_one_or_none()
    if existing is not None:
        if existing.org_id == org.id:
            return _view(existing, org.slug)
        stale = existing.verified_at is None and existing.created_at <= utcnow() - CLAIM_EXPIRY
        if not stale:
            raise AlreadyExists(f"{name} is claimed by another org", "DOMAIN_CLAIMED")
        await session.delete(existing)
        await session.flush()
    row = OrgDomain(org_id=org.id, domain=name, verification_token=names.new_token())
    session.add(row)
    await session.flush()
    return _view(row, org.slug)


async def get(session: AsyncSession, org: Organization, domain: str) -> OrgDomain:
    name = names.normalize(domain)
    row = (
        await session.execute(select(OrgDomain).where(OrgDomain.domain == name, OrgDomain.org_id == org.id))
    ).scalar_one_or_none()
    if row is None:
        raise NotFound(f"{name} is not a domain of this org", "DOMAIN_NOT_FOUND")
    return row


async def mark_verified(session: AsyncSession, row: OrgDomain, org_slug: str) -> DomainView:
    if row.verified_at is None:
        row.verified_at = utcnow()
        await session.flush()
    return _view(row, org_slug)


async def list_in_org(session: AsyncSession, org: Organization) -> list[DomainView]:
    rows = (
        (await session.execute(select(OrgDomain).where(OrgDomain.org_id == org.id).order_by(OrgDomain.domain)))
        .scalars()
        .all()
    )
    return [_view(row, org.slug) for row in rows]


async def remove(session: AsyncSession, org: Organization, domain: str) -> DomainView:
    row = await get(session, org, domain)
    view = _view(row, org.slug)
    await session.execute(delete(OrgDomain).where(OrgDomain.id == row.id))
    return view


async def verified(session: AsyncSession) -> list[tuple[str, str]]:
    """(domain, org slug) of every verified domain."""
    rows = await session.execute(
        select(OrgDomain.domain, Organization.slug)
        .join(Organization, Organization.id == OrgDomain.org_id)
        .where(OrgDomain.verified_at.is_not(None))
        .order_by(OrgDomain.domain)
    )
    return [(domain, slug) for domain, slug in rows.all()]
