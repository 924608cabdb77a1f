"""Verified custom domains are proven again (policy_service/domains/recheck.py): a domain whose
proof stays missing for the grace period stops routing and goes back to a pending claim, with
an audit row whose actor is the system; one failed lookup changes nothing, and several
replicas look a domain up once per period. Regression: a domain, once verified, routed and
blocked every other org's claim forever, though its org no longer controlled the name."""

from __future__ import annotations

import asyncio
import json
from datetime import timedelta
from typing import Any

import pytest
from sqlalchemy import select

from policy_service.config import Settings
from policy_service.domain_client import DomainClient
from policy_service.domains.recheck import DomainRechecker, RecheckPolicy, Released
from policy_service.domains.verification import DomainVerifier, resolver_for
from policy_service.storage.database import create_engine, session_factory
from policy_service.storage.models import AuditRequestLog, Organization, OrgDomain, new_id, utcnow
from tests.conftest import World
from tests.e2e.test_custom_domains import DOMAIN, _post, _verified, site, zone  # noqa: F401 (fixtures)
from tests.support.dns_server import Zone

DAY = timedelta(days=1)


@pytest.fixture
def settings(settings: Settings, zone: tuple[Zone, str], site: tuple[object, int]) -> Settings:  # noqa: F811
    # Every second, no grace: a missing proof releases the domain at the next round.
    return settings.model_copy(
        update={
            "dns_nameservers": zone[1],
            "domain_http_port": site[1],
            "domain_recheck_seconds": 1.0,
            "domain_recheck_grace_seconds": 0.0,
        }
    )


async def test_a_domain_whose_proof_is_gone_stops_routing_and_is_audited(
    world: World,
    zone: tuple[Zone, str],  # noqa: F811
    front: str,
) -> None:
    records, _ = zone
    await _verified(world, records)
    key = world.keys["acme:member"]
    assert (await _post(front, DOMAIN, "/tools/mcp", key)).status_code == 200
    async with world.client("acme:admin") as admin:
        claim = (await DomainClient(admin).list_domains())[0]
        records.set(claim.txt_record_name, "TXT")  # the org no longer controls the name
        assert await _status_soon(front, key, 404)
        assert [(d.domain, d.verified) for d in await DomainClient(admin).list_domains()] == [(DOMAIN, False)]
        rows = (await world.operator.query_audit("acme", page_size=100)).records
        row = next(r for r in rows if r.method == "system/ReleaseDomain")
        assert row.source == "system" and row.status == "ok"
        change = json.loads(row.response_json)
        assert change["before"]["domain"] == DOMAIN and change["before"]["verified_at"]
        assert change["after"] == {"domain": DOMAIN, "verified_at": None}
        # The claim is kept: publishing the proof again verifies it again.
        records.set(claim.txt_record_name, "TXT", claim.txt_record_value)
        assert (await DomainClient(admin).verify_domain("", DOMAIN, "dns")).verified
    assert await _status_soon(front, key, 200)  # within the front's domain cache TTL


async def _status_soon(front: str, key: str, status: int) -> bool:
    for _ in range(150):
        if (await _post(front, DOMAIN, "/tools/mcp", key)).status_code == status:
            return True
        await asyncio.sleep(0.1)
    return False


def _row(gone: Released) -> dict[str, Any]:
    """A release's audit row, as the service's builder shapes it (method, source, org)."""
    return {
        "call_id": new_id(),
        "method": "system/ReleaseDomain",
        "source": "system",
        "org_slug": gone.org_slug,
        "status": "ok",
        "created_at": utcnow(),
    }


class CountingVerifier(DomainVerifier):
    lookups = 0

    async def proven(self, domain: str, token: str, method: str = "") -> str:
        CountingVerifier.lookups += 1
        return await super().proven(domain, token, method)


async def test_one_failed_check_changes_nothing_and_the_grace_period_counts(
    database_url: str,
    zone: tuple[Zone, str],  # noqa: F811
) -> None:
    records, nameserver = zone
    engine = create_engine(database_url)
    sessions = session_factory(engine)
    verifier = CountingVerifier(resolver_for(nameserver), http_port=9)  # nothing answers HTTP there
    rechecker = DomainRechecker(sessions, verifier, RecheckPolicy(every=DAY, grace=3 * DAY), _row)
    token, t0 = "t" * 32, utcnow()
    async with sessions() as session, session.begin():
        org = Organization(slug="acme", name="Acme")
        session.add(org)
        await session.flush()
        session.add(OrgDomain(org_id=org.id, domain=DOMAIN, verification_token=token, verified_at=t0))
    txt = f"_monomcp-challenge.{DOMAIN}"
    proof = f"monomcp-domain-verification={token}"

    async def state() -> tuple[bool, object]:
        async with sessions() as session:
            row = (await session.execute(OrgDomain.__table__.select())).one()
            return row.verified_at is not None, row.failing_since

    try:
        records.set(txt, "TXT", proof)
        assert await rechecker.run_once(t0) == [] and await state() == (True, None)
        records.set(txt, "TXT")  # a lookup fails: the domain stays verified, the clock starts
        assert await rechecker.run_once(t0 + DAY) == []
        verified, failing_since = await state()
        assert verified and failing_since == t0 + DAY
        before = CountingVerifier.lookups
        assert await rechecker.run_once(t0 + DAY + timedelta(hours=1)) == []  # not due yet
        assert CountingVerifier.lookups == before
        records.set(txt, "TXT", proof)  # back: the clock stops
        assert await rechecker.run_once(t0 + 2 * DAY) == [] and await state() == (True, None)
        records.set(txt, "TXT")
        assert await rechecker.run_once(t0 + 3 * DAY) == []
        assert await rechecker.run_once(t0 + 5 * DAY) == []  # missing for 2 days of 3
        # Two replicas at once: one lookup between them, and the release happens once.
        other = DomainRechecker(sessions, verifier, RecheckPolicy(every=DAY, grace=3 * DAY), _row)
        before = CountingVerifier.lookups
        both = await asyncio.gather(rechecker.run_once(t0 + 6 * DAY), other.run_once(t0 + 6 * DAY))
        assert CountingVerifier.lookups == before + 1
        released = [gone for found in both for gone in found]
        assert [(g.domain, g.org_slug, g.verified_at) for g in released] == [(DOMAIN, "acme", t0)]
        assert await state() == (False, None)  # still a claim, pending
        assert await rechecker.run_once(t0 + 9 * DAY) == []  # pending claims are not rechecked
    finally:
        await engine.dispose()


async def test_a_release_and_its_audit_row_commit_together(
    database_url: str,
    zone: tuple[Zone, str],  # noqa: F811
) -> None:
    """Regression: a release and its audit row were two writes, so an audit row that could not
    be written left a domain released with no record, and (the round stopping there) skipped
    the audit of the others released with it. Now each release stages its row in its own
    transaction: a row that cannot be built or stored leaves its domain verified (looked at
    again next period) and the others are released and audited."""
    _, nameserver = zone  # publishes no proof: every verified domain is released at once
    engine = create_engine(database_url)
    sessions = session_factory(engine)
    verifier = DomainVerifier(resolver_for(nameserver), http_port=9)

    def row(gone: Released) -> dict[str, Any]:
        if gone.org_slug == "acme":
            raise RuntimeError("the audit log is unavailable")
        return _row(gone)

    rechecker = DomainRechecker(sessions, verifier, RecheckPolicy(every=DAY, grace=timedelta(0)), row)
    async with sessions() as session, session.begin():
        for slug, domain in (("acme", DOMAIN), ("globex", f"other-{DOMAIN}")):
            org = Organization(slug=slug, name=slug)
            session.add(org)
            await session.flush()
            session.add(OrgDomain(org_id=org.id, domain=domain, verification_token="t" * 32, verified_at=utcnow()))
    try:
        released = await rechecker.run_once()
        assert [g.domain for g in released] == [f"other-{DOMAIN}"]
        async with sessions() as session:
            verified = (await session.execute(select(OrgDomain.domain).where(OrgDomain.verified_at.is_not(None)))).all()
            audited = (
                await session.execute(
                    select(AuditRequestLog.org_slug).where(AuditRequestLog.method == "system/ReleaseDomain")
                )
            ).all()
        assert [d for (d,) in verified] == [DOMAIN]  # acme's release rolled back with its row
        assert [o for (o,) in audited] == ["globex"]
    finally:
        await engine.dispose()
