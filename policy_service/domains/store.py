"""Custom domains in the database: claim, verify, list, release.

A claim is a pending row per (org, domain) with its own token; a pending claim blocks
nobody, so several orgs may hold one on the same name and a claim that cannot be proven
cannot squat. The first org to prove control gets the domain: its row is marked verified
(a partial unique index allows one verified row per domain, so a racing second proof fails)
and every other org's pending claim on it is dropped. A verified domain is then refused to
other orgs' claims until its org removes it.

Since claims cost nothing to make, an org holds at most MAX_PENDING_PER_ORG unproven ones at a
time: each is a row, a token and a DNS/HTTP lookup per verify attempt, so an unbounded number
would let one org fill a table every org shares."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import delete, func, select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession

from policy_service.domains import names
from policy_service.errors import AlreadyExists, FailedPrecondition, NotFound
from policy_service.storage.models import Organization, OrgDomain, utcnow

MAX_PENDING_PER_ORG = 20


@dataclass(frozen=True, slots=True)
class DomainView:
    domain: str
    org_slug: str
    token: str
    created_at: datetime
    verified_at: datetime | None


def _view(row: OrgDomain, org_slug: str) -> DomainView:
    return DomainView(row.domain, org_slug, row.verification_token, row.created_at, row.verified_at)


async def _verified_elsewhere(session: AsyncSession, org: Organization, name: str) -> bool:
    found = await session.execute(
        select(OrgDomain.id).where(
            OrgDomain.domain == name, OrgDomain.org_id != org.id, OrgDomain.verified_at.is_not(None)
        )
    )
    return found.first() is not None


def _claimed() -> AlreadyExists:
    return AlreadyExists("that domain is verified by another org", "DOMAIN_CLAIMED")


async def add(session: AsyncSession, org: Organization, domain: str) -> DomainView:
    """The org's claim on `domain` (the existing one when it has claimed it already)."""
    name = names.normalize(domain)
    own = (
        await session.execute(select(OrgDomain).where(OrgDomain.domain == name, OrgDomain.org_id == org.id))
    ).scalar_one_or_none()
    if own is not None:
        return _view(own, org.slug)
    if await _verified_elsewhere(session, org, name):
        raise _claimed()
    # Claims of one org queue here on Postgres, so concurrent adds cannot both count 19.
    await session.execute(select(Organization.id).where(Organization.id == org.id).with_for_update())
    pending = select(func.count()).where(OrgDomain.org_id == org.id, OrgDomain.verified_at.is_(None))
    if (await session.execute(pending)).scalar_one() >= MAX_PENDING_PER_ORG:
        limit = f"an org has at most {MAX_PENDING_PER_ORG} unverified domain claims; verify or remove one first"
        raise FailedPrecondition(limit, "TOO_MANY_PENDING_DOMAINS")
    row = OrgDomain(org_id=org.id, domain=name, verification_token=names.new_token())
    session.add(row)
    try:
        await session.flush()
    except IntegrityError:  # the same org's racing claim
        raise AlreadyExists(
            f"{name} is being claimed by this org already; list its domains", "DOMAIN_CLAIMED"
        ) from None
    return _view(row, org.slug)


async def get(session: AsyncSession, org: Organization, domain: str) -> OrgDomain:
    name = names.normalize(domain)
    row = (
        await session.execute(select(OrgDomain).where(OrgDomain.domain == name, OrgDomain.org_id == org.id))
    ).scalar_one_or_none()
    if row is None:
        raise NotFound(f"{name} is not a domain of this org", "DOMAIN_NOT_FOUND")
    return row


async def mark_verified(session: AsyncSession, row: OrgDomain, org: Organization) -> DomainView:
    """The org's proven claim becomes the domain's owner; other orgs' pending claims go.
    ALREADY_EXISTS when another org's proof got there first."""
    if row.verified_at is not None:
        return _view(row, org.slug)
    # Proofs of one name queue here on Postgres (SQLite has one writer anyway): without the
    # lock, two proofs could deadlock on each other's row and index entry.
    claims = select(OrgDomain.id).where(OrgDomain.domain == row.domain).order_by(OrgDomain.id)
    await session.execute(claims.with_for_update())
    if await _verified_elsewhere(session, org, row.domain):
        raise _claimed()
    try:
        done = await session.execute(
            update(OrgDomain)
            .where(OrgDomain.id == row.id, OrgDomain.verified_at.is_(None))
            .values(verified_at=utcnow(), checked_at=utcnow(), failing_since=None)
        )
    except IntegrityError:  # the partial unique index: one verified row per domain
        raise _claimed() from None
    if getattr(done, "rowcount", 0) != 1:  # another org's proof dropped this claim since it was read
        raise _claimed()
    pending = OrgDomain.verified_at.is_(None)
    await session.execute(delete(OrgDomain).where(OrgDomain.domain == row.domain, OrgDomain.id != row.id, pending))
    await session.refresh(row)
    return _view(row, org.slug)


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
