"""Retention: removes every audit row of calls older than a boundary and keeps the digest
chain verifiable (ADR 0022).

On Postgres the rows go a month partition at a time (DROP TABLE, no row-by-row delete).
Partitions follow a call's time while digests follow seq, so a digest can straddle the
boundary: the digests covering removed rows are replaced by one anchor that carries the
last of them's hash and the (seq, hash) of the rows of that range that stay ("survivors",
hashes taken from the digests, never recomputed). Verification starts from the anchor:
the rows under it must be exactly its survivors. With a signing key the anchor's signature
covers the survivors too."""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from datetime import datetime

from sqlalchemy import delete, func, select, text
from sqlalchemy.ext.asyncio import AsyncSession

from policy_service.audit import chain, partitions
from policy_service.storage.models import AuditDigest, AuditRequestLog, utcnow


@dataclass
class Pruned:
    rows: int = 0
    partitions: list[str] = field(default_factory=list)
    boundary: datetime | None = None
    anchor_seq: int = 0
    # Why nothing was removed, when nothing was.
    reason: str = ""


class RetentionRefused(Exception):
    """The rows to remove are not all digested, or the table disagrees with the digests."""


async def prune(session: AsyncSession, cutoff: datetime, signing_key: str) -> Pruned:
    """Inside the chain writer's transaction (lock held): remove calls older than `cutoff`."""
    if await partitions.is_partitioned(session):
        # What DROP TABLE takes anyway, taken first: no row can land under the boundary
        # between the check below and the drop.
        await session.execute(text(f"LOCK TABLE {partitions.TABLE} IN ACCESS EXCLUSIVE MODE"))
    boundary = await partitions.retention_boundary(session, cutoff)
    result = Pruned(boundary=boundary)
    log_table = AuditRequestLog
    newest_old = (await session.execute(select(func.max(log_table.seq)).where(log_table.call_at < boundary))).scalar()
    if newest_old is None:
        result.reason = f"no audit rows of calls before {boundary:%Y-%m-%d %H:%M}"
        return result
    heads = (await session.execute(select(AuditDigest.id, AuditDigest.last_seq).order_by(AuditDigest.id))).all()
    covering = next((d for d in heads if d.last_seq >= newest_old), None)
    if covering is None:
        result.reason = f"rows up to seq {newest_old} are not digested yet; retry after the next digest"
        return result
    upto = int(covering.last_seq)
    result.rows, result.partitions = await partitions.remove_before(session, boundary)
    kept = [int(s) for s in (await session.execute(select(log_table.seq).where(log_table.seq <= upto))).scalars()]
    survivors = await _survivor_hashes(session, kept, int(covering.id))
    last = (await session.execute(select(AuditDigest).where(AuditDigest.id == covering.id))).scalar_one()
    digest, anchor_id = last.digest, last.id
    await session.execute(delete(AuditDigest).where(AuditDigest.id <= anchor_id))
    session.add(
        AuditDigest(
            id=anchor_id,
            first_seq=0,
            last_seq=upto,
            row_count=len(survivors),
            rows_sha256=chain.ANCHOR,
            row_hashes=json.dumps(survivors),
            previous_digest=chain.GENESIS,
            digest=digest,
            signature=chain.sign(signing_key, chain.anchor_message(upto, digest, survivors)),
            created_at=utcnow(),
        )
    )
    result.anchor_seq = upto
    return result


async def _survivor_hashes(session: AsyncSession, kept: list[int], last_id: int) -> list[tuple[int, str]]:
    """The digested hashes of the rows that stay under the new anchor."""
    if not kept:
        return []
    digests = (
        await session.execute(
            select(AuditDigest)
            .where(AuditDigest.id <= last_id, AuditDigest.last_seq >= kept[0])
            .order_by(AuditDigest.id)
        )
    ).scalars()
    known: dict[int, str] = {}
    for d in digests:
        known.update((int(s), str(h)) for s, h in json.loads(d.row_hashes))
    missing = [s for s in kept if s not in known]
    if missing:
        raise RetentionRefused(f"rows {missing[:5]} lie under digests that do not list them (verify the log first)")
    return [(s, known[s]) for s in kept]
