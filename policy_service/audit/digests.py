"""Tamper evidence in the style of CloudTrail digest files.

Each digest hashes the finished rows since the previous digest and chains to it. A row is
digested only once no earlier row is still `started`, so every digest covers a
contiguous, immutable range. `verify` recomputes everything and names the rows that were
edited, deleted, inserted or reordered.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass, field
from datetime import datetime, timedelta

from sqlalchemy import delete, func, select, update
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from policy_service.storage.models import AuditDigest, AuditRequestLog, utcnow

GENESIS = "0" * 64
ANCHOR = "retention-anchor"
_CONTENT_FIELDS = [c.name for c in AuditRequestLog.__table__.columns if c.name != "seq"]


def content_hash(row: AuditRequestLog) -> str:
    values = {name: getattr(row, name) for name in _CONTENT_FIELDS}
    text = json.dumps(values, sort_keys=True, default=lambda v: v.isoformat(), separators=(",", ":"))
    return hashlib.sha256(text.encode()).hexdigest()


def _rows_sha(pairs: list[tuple[int, str]]) -> str:
    return hashlib.sha256(json.dumps(pairs, separators=(",", ":")).encode()).hexdigest()


def chain(previous: str, first: int, last: int, count: int, rows_sha256: str) -> str:
    return hashlib.sha256(f"{previous}|{first}|{last}|{count}|{rows_sha256}".encode()).hexdigest()


@dataclass
class Verification:
    ok: bool = True
    rows_checked: int = 0
    digests_checked: int = 0
    problems: list[str] = field(default_factory=list)


def _compare(label: str, expected: list[tuple[int, str]], actual: list[tuple[int, str]]) -> list[str]:
    if expected == actual:
        return []
    exp, act = dict(expected), dict(actual)
    problems = [f"{label}: row {s} deleted" for s in exp if s not in act]
    problems += [f"{label}: row {s} inserted" for s in act if s not in exp]
    changed = [s for s in exp if s in act and exp[s] != act[s]]
    # A row whose original content now sits at another position was moved, not edited.
    moved = [s for s in changed if any(act[t] == exp[s] for t in changed if t != s)]
    if moved:
        problems.append(f"{label}: rows {', '.join(map(str, moved))} reordered")
    problems += [f"{label}: row {s} edited" for s in changed if s not in moved]
    return problems


class AuditDigester:
    def __init__(self, sessions: async_sessionmaker[AsyncSession], abandon_after: timedelta) -> None:
        self._sessions = sessions
        self._abandon_after = abandon_after

    async def sweep_abandoned(self) -> int:
        """Marks rows left `started` (e.g. by a front that crashed mid-call) as `abandoned`."""
        cutoff = utcnow() - self._abandon_after
        async with self._sessions() as session, session.begin():
            result = await session.execute(
                update(AuditRequestLog)
                .where(AuditRequestLog.status == "started", AuditRequestLog.created_at < cutoff)
                .values(status="abandoned", error="no completion reported", completed_at=utcnow())
            )
        return int(getattr(result, "rowcount", 0) or 0)

    async def write_digest(self) -> AuditDigest | None:
        async with self._sessions() as session, session.begin():
            last = (
                await session.execute(select(AuditDigest).order_by(AuditDigest.id.desc()).limit(1))
            ).scalar_one_or_none()
            after = last.last_seq if last else 0
            oldest_started = (
                await session.execute(
                    select(func.min(AuditRequestLog.seq)).where(
                        AuditRequestLog.status == "started", AuditRequestLog.seq > after
                    )
                )
            ).scalar()
            stmt = select(AuditRequestLog).where(AuditRequestLog.seq > after)
            if oldest_started is not None:
                stmt = stmt.where(AuditRequestLog.seq < oldest_started)
            rows = list((await session.execute(stmt.order_by(AuditRequestLog.seq))).scalars())
            if not rows:
                return None
            pairs = [(r.seq, content_hash(r)) for r in rows]
            previous = last.digest if last else GENESIS
            rows_sha = _rows_sha(pairs)
            digest = AuditDigest(
                first_seq=rows[0].seq,
                last_seq=rows[-1].seq,
                row_count=len(rows),
                rows_sha256=rows_sha,
                row_hashes=json.dumps(pairs),
                previous_digest=previous,
                digest=chain(previous, rows[0].seq, rows[-1].seq, len(rows), rows_sha),
                created_at=utcnow(),
            )
            session.add(digest)
        return digest

    async def apply_retention(self, cutoff: datetime) -> int:
        """Deletes digested rows created before `cutoff`, whole digests at a time.

        The pruned digests are replaced by one anchor (no rows, the last pruned digest's
        hash), so the chain still verifies and a deleted row inside the retained range is
        still reported. Rows not yet digested are never removed. On Postgres this is the
        operation a time-partitioned table turns into partition drops.
        """
        async with self._sessions() as session, session.begin():
            digests = list((await session.execute(select(AuditDigest).order_by(AuditDigest.id))).scalars())
            prunable: list[AuditDigest] = []
            for d in digests:
                newest = (
                    await session.execute(
                        select(func.max(AuditRequestLog.created_at)).where(
                            AuditRequestLog.seq >= d.first_seq, AuditRequestLog.seq <= d.last_seq
                        )
                    )
                ).scalar()
                if newest is not None and newest >= cutoff:
                    break
                prunable.append(d)
            if not prunable or (len(prunable) == 1 and prunable[0].row_count == 0):
                return 0
            last = prunable[-1]
            result = await session.execute(delete(AuditRequestLog).where(AuditRequestLog.seq <= last.last_seq))
            await session.execute(delete(AuditDigest).where(AuditDigest.id <= last.id))
            session.add(
                AuditDigest(
                    id=last.id,
                    first_seq=0,
                    last_seq=last.last_seq,
                    row_count=0,
                    rows_sha256=ANCHOR,
                    row_hashes="[]",
                    previous_digest=GENESIS,
                    digest=last.digest,
                    created_at=utcnow(),
                )
            )
        return int(getattr(result, "rowcount", 0) or 0)

    async def verify(self) -> Verification:
        result = Verification()
        async with self._sessions() as session:
            digests = list((await session.execute(select(AuditDigest).order_by(AuditDigest.id))).scalars())
            previous, previous_last = GENESIS, 0
            for index, d in enumerate(digests):
                result.digests_checked += 1
                label = f"digest {d.id}"
                if index == 0 and d.rows_sha256 == ANCHOR:
                    # Retention removed everything up to here; the chain continues from this hash.
                    previous, previous_last = d.digest, d.last_seq
                    continue
                expected = [(int(s), str(h)) for s, h in json.loads(d.row_hashes)]
                if (
                    d.previous_digest != previous
                    or _rows_sha(expected) != d.rows_sha256
                    or d.digest != chain(d.previous_digest, d.first_seq, d.last_seq, d.row_count, d.rows_sha256)
                ):
                    result.problems.append(f"{label}: digest chain broken (a digest was edited or removed)")
                rows = (
                    await session.execute(
                        select(AuditRequestLog)
                        .where(AuditRequestLog.seq > previous_last, AuditRequestLog.seq <= d.last_seq)
                        .order_by(AuditRequestLog.seq)
                    )
                ).scalars()
                actual = [(r.seq, content_hash(r)) for r in rows]
                result.rows_checked += len(actual)
                result.problems += _compare(label, expected, actual)
                previous, previous_last = d.digest, d.last_seq
        result.ok = not result.problems
        return result
