"""Verified domains are proven again from time to time.

Control of a name can lapse (a registration expires, DNS moves to a new owner), and a proof
from last year should not route a name today, nor keep its new owner from claiming it. Every
`every`, each verified domain's own proof (its TXT record or HTTP token) is looked up again.
One failed lookup changes nothing (a DNS outage must not take an org's domain away): only a
domain whose proof has been missing at every check for `grace` loses its verification. Its
claim stays, pending, so its org can prove it again; the fronts stop routing it within their
domain cache's TTL, and the release is an audit row (actor: the system).

Several replicas may run this: each check is claimed by an UPDATE of its `checked_at`, so a
domain is looked up once per period whatever the number of replicas.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import ColumnElement, or_, select, update
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from policy_service.audit.writer import AuditLog
from policy_service.domains.verification import DomainVerifier
from policy_service.storage.models import Organization, OrgDomain, utcnow

log = logging.getLogger(__name__)

_BATCH = 100  # domains looked up per round at most; the rest wait for the next round


@dataclass(frozen=True, slots=True)
class RecheckPolicy:
    every: timedelta
    grace: timedelta


@dataclass(frozen=True, slots=True)
class Released:
    """A domain whose proof stayed missing for the grace period."""

    domain: str
    org_slug: str
    verified_at: datetime


ReleaseRow = Callable[[Released], dict[str, Any]]  # the audit row of a release


class DomainRechecker:
    def __init__(
        self,
        sessions: async_sessionmaker[AsyncSession],
        verifier: DomainVerifier,
        policy: RecheckPolicy,
        audit_row: ReleaseRow,
    ) -> None:
        self._sessions = sessions
        self._verifier = verifier
        self._policy = policy
        self._audit_row = audit_row

    async def run_once(self, now: datetime | None = None) -> list[Released]:
        """Checks the domains due; returns those released in this round."""
        now = now or utcnow()
        cutoff = now - self._policy.every
        due = or_(OrgDomain.checked_at.is_(None), OrgDomain.checked_at <= cutoff)
        async with self._sessions() as session:
            rows = (
                await session.execute(
                    select(OrgDomain.id, OrgDomain.domain, OrgDomain.verification_token)
                    .where(OrgDomain.verified_at.is_not(None), due)
                    .order_by(OrgDomain.checked_at.nulls_first())
                    .limit(_BATCH)
                )
            ).all()
        released = []
        for row_id, domain, token in rows:
            if not await self._claim(row_id, due, now):
                continue  # another replica checks it
            proven = bool(await self._verifier.proven(domain, token))
            try:
                gone = await self._record(row_id, proven, now)
            except Exception:  # its release rolled back with its row: it is looked at next period
                log.exception("domain recheck of %s failed", domain)
                continue
            if gone is not None:
                released.append(gone)
        return released

    async def _claim(self, row_id: str, due: ColumnElement[bool], now: datetime) -> bool:
        async with self._sessions() as session, session.begin():
            claimed = await session.execute(
                update(OrgDomain)
                .where(OrgDomain.id == row_id, OrgDomain.verified_at.is_not(None), due)
                .values(checked_at=now)
            )
            return getattr(claimed, "rowcount", 0) == 1

    async def _record(self, row_id: str, proven: bool, now: datetime) -> Released | None:
        async with self._sessions() as session, session.begin():
            row = await session.get(OrgDomain, row_id, with_for_update=True)
            if row is None or row.verified_at is None:
                return None  # removed or released meanwhile
            if proven:
                row.failing_since = None
                return None
            row.failing_since = row.failing_since or now
            if now - row.failing_since < self._policy.grace:
                log.warning("domain %s: proof missing since %s", row.domain, row.failing_since.isoformat())
                return None
            gone = Released(row.domain, await _slug(session, row.org_id), row.verified_at)
            row.verified_at, row.failing_since = None, None
            await AuditLog.stage(session, self._audit_row(gone))
            log.warning("domain %s of org %s released: no proof for %s", gone.domain, gone.org_slug, self._policy.grace)
            return gone

    async def run(self) -> None:
        """Rounds forever, one per tenth of the period (at least a second); a failed round retries."""
        pause = max(self._policy.every.total_seconds() / 10, 1.0)
        while True:
            try:
                await self.run_once()
            except Exception:
                log.exception("domain recheck round failed")
            await asyncio.sleep(pause)


async def _slug(session: AsyncSession, org_id: str) -> str:
    return (await session.execute(select(Organization.slug).where(Organization.id == org_id))).scalar_one()
