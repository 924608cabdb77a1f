"""Tamper evidence in the style of CloudTrail digest files, over an append-only log.

Each digest hashes the rows written since the previous digest and chains to it; with a
signing key (MONOMCP_AUDIT_SIGNING_KEY) each is also HMAC-signed, so a database writer
without the key cannot forge one. Rows are never updated (completions are rows of their
own), so a digest covers every row older than a short settle window: nothing waits for
unfinished calls. `verify` only reads and names rows edited, deleted, inserted or
reordered; digests can be exported and checked outside the database (`chain.py`).
"""

from __future__ import annotations

import asyncio
import json
import logging
from dataclasses import dataclass, field
from datetime import datetime, timedelta

from sqlalchemy import Table, and_, func, insert, literal_column, select, text
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker
from sqlalchemy.orm import aliased

from policy_service.audit import chain, partitions, retention
from policy_service.audit.sinks import COMPLETABLE_FOR
from policy_service.storage.models import AuditDigest, AuditRequestLog, new_id, utcnow

log = logging.getLogger(__name__)

_LOG: Table = AuditRequestLog.__table__  # type: ignore[assignment]
# What a row's hash covers: everything but its position and its partition key (call_at is
# derived from created_at and the call's row, and was added after rows were digested).
_CONTENT_FIELDS = [c.name for c in _LOG.columns if c.name not in ("seq", "call_at")]
_COPIED_FIELDS = [*_CONTENT_FIELDS, "call_at"]
_COMPLETION = aliased(AuditRequestLog)


async def _lock_chain(session: AsyncSession) -> None:
    """One chain writer at a time across processes: a transaction-scoped advisory lock on
    Postgres; on SQLite a no-op write takes the database's write lock before anything is read."""
    if session.get_bind().dialect.name == "postgresql":
        await session.execute(text("SELECT pg_advisory_xact_lock(7239011)"))
    else:
        await session.execute(text("UPDATE audit_digests SET id = id WHERE 0 = 1"))


# Columns added after rows were first digested: hashed only when set, so digests written
# before the column existed still verify.
_HASHED_WHEN_SET = frozenset({"rule"})


def content_hash(row: AuditRequestLog) -> str:
    values = {name: getattr(row, name) for name in _CONTENT_FIELDS}
    return chain.content_hash({k: v for k, v in values.items() if v or k not in _HASHED_WHEN_SET})


def link_of(d: AuditDigest) -> chain.Link:
    return chain.Link.from_fields(d, d.row_hashes)


# The first sweep of a process looks this far back; later ones from the previous cutoff (with
# an overlap for rows committed late). A call left open longer than this across a restart
# keeps its `started` row: visible, never nothing.
_FIRST_SWEEP = COMPLETABLE_FOR
_SWEEP_OVERLAP = timedelta(minutes=5)
_SWEEP_BATCH = 1000


@dataclass
class Verification:
    ok: bool = True
    rows_checked: int = 0
    digests_checked: int = 0
    problems: list[str] = field(default_factory=list)


@dataclass(frozen=True)
class DigestPolicy:
    abandon_after: timedelta = timedelta(hours=1)
    # Rows younger than this are left for the next digest: a transaction that took a
    # sequence number may not have committed yet.
    settle: timedelta = timedelta(seconds=5)
    signing_key: str = ""
    previous_signing_keys: tuple[str, ...] = ()
    retention: bool = False
    # Rows older than this and covered by no digest mean digests were deleted: verify says so,
    # and no new chain is started over them (it would seal whatever was done to them).
    stale_after: timedelta = timedelta(minutes=10)


class AuditDigester:
    def __init__(self, sessions: async_sessionmaker[AsyncSession], policy: DigestPolicy) -> None:
        self._sessions = sessions
        self._policy = policy
        # One chain writer per process; across processes the database lock in _lock_chain.
        self._writing = asyncio.Lock()
        # Calls started before this were all looked at by an earlier sweep (ADR 0022): each
        # round reads only the calls that crossed the cutoff since, not the whole log.
        self._swept_until: datetime | None = None

    async def sweep_abandoned(self) -> int:
        """Appends an `abandoned` completion for calls left `started` (e.g. a front that crashed)."""
        cutoff = utcnow() - self._policy.abandon_after
        since = (self._swept_until or cutoff - _FIRST_SWEEP) - _SWEEP_OVERLAP
        async with self._sessions() as session:
            stale = list(
                (
                    await session.execute(
                        select(AuditRequestLog)
                        .outerjoin(
                            _COMPLETION,
                            and_(
                                _COMPLETION.completes == AuditRequestLog.call_id,
                                _COMPLETION.completes != literal_column("''"),  # lets the partial unique index serve it
                                _COMPLETION.call_at == AuditRequestLog.call_at,
                            ),
                        )
                        .where(
                            AuditRequestLog.status == "started",
                            AuditRequestLog.created_at < cutoff,
                            AuditRequestLog.created_at >= since,
                            AuditRequestLog.call_at >= since,  # a started row's call_at is its created_at
                            _COMPLETION.seq.is_(None),
                        )
                        .limit(_SWEEP_BATCH)
                    )
                ).scalars()
            )
        swept = 0
        for row in stale:
            now = utcnow()
            values = {name: getattr(row, name) for name in _COPIED_FIELDS} | {
                "call_id": new_id(),
                "completes": row.call_id,
                "request_payload": "",
                "redacted_paths": "[]",
                "status": "abandoned",
                "error": "no completion reported",
                "created_at": now,
                "completed_at": now,
            }
            try:
                async with self._sessions() as session, session.begin():
                    await session.execute(insert(_LOG), [values])
                swept += 1
            except IntegrityError:
                pass  # completed meanwhile
        if len(stale) < _SWEEP_BATCH:  # all of them looked at and closed: the next round starts here
            self._swept_until = cutoff
        return swept

    async def write_digest(self) -> AuditDigest | None:
        async with self._writing, self._sessions() as session, session.begin():
            await _lock_chain(session)
            last = (
                await session.execute(select(AuditDigest).order_by(AuditDigest.id.desc()).limit(1))
            ).scalar_one_or_none()
            if last is not None and last.signature and not self._policy.signing_key:
                log.error("the audit chain is signed but MONOMCP_AUDIT_SIGNING_KEY is not set here: no digest written")
                return None
            after = last.last_seq if last else 0
            if last is None and await self._stale_rows(session, 0):
                log.error(
                    "audit rows older than %s have no digest: not starting a new chain over them",
                    self._policy.stale_after,
                )
                return None
            unsettled = (
                await session.execute(
                    select(func.min(AuditRequestLog.seq)).where(
                        AuditRequestLog.seq > after, AuditRequestLog.created_at >= utcnow() - self._policy.settle
                    )
                )
            ).scalar()
            stmt = select(AuditRequestLog).where(AuditRequestLog.seq > after)
            if unsettled is not None:
                stmt = stmt.where(AuditRequestLog.seq < unsettled)
            rows = list((await session.execute(stmt.order_by(AuditRequestLog.seq))).scalars())
            if not rows:
                return None
            pairs = [(r.seq, content_hash(r)) for r in rows]
            previous = last.digest if last else chain.GENESIS
            rows_sha = chain.rows_sha(pairs)
            link = chain.link_hash(previous, rows[0].seq, rows[-1].seq, len(rows), rows_sha)
            digest = AuditDigest(
                first_seq=rows[0].seq,
                last_seq=rows[-1].seq,
                row_count=len(rows),
                rows_sha256=rows_sha,
                row_hashes=json.dumps(pairs),
                previous_digest=previous,
                digest=link,
                signature=chain.sign(self._policy.signing_key, link),
                created_at=utcnow(),
            )
            session.add(digest)
        return digest

    @property
    def retention_configured(self) -> bool:
        return self._policy.retention

    async def prepare_partitions(self, ahead: int = partitions.AHEAD_MONTHS) -> list[str]:
        """Creates the month partitions `ahead` months on (Postgres; nothing on SQLite)."""
        async with self._sessions() as session, session.begin():
            return await partitions.ensure_ahead(session, utcnow(), ahead)

    async def apply_retention(self, cutoff: datetime) -> int:
        """Removes the rows of calls before `cutoff` (whole month partitions on Postgres) and
        leaves an anchor the chain verifies from (audit/retention.py). Rows not yet digested
        are never removed. Returns the rows removed."""
        return (await self.prune(cutoff)).rows

    async def prune(self, cutoff: datetime) -> retention.Pruned:
        if not self._policy.retention:
            return retention.Pruned(reason="retention is not configured (MONOMCP_AUDIT_RETENTION_DAYS)")
        async with self._writing, self._sessions() as session, session.begin():
            await _lock_chain(session)
            return await retention.prune(session, cutoff, self._policy.signing_key)

    @staticmethod
    async def _check_anchor(session: AsyncSession, link: chain.Link, result: Verification) -> list[str]:
        """The rows under an anchor must be exactly the survivors it lists (ADR 0022)."""
        rows = (
            await session.execute(
                select(AuditRequestLog).where(AuditRequestLog.seq <= link.last_seq).order_by(AuditRequestLog.seq)
            )
        ).scalars()
        actual = [(r.seq, content_hash(r)) for r in rows]
        result.rows_checked += len(actual)
        if actual == link.row_hashes:
            return []
        label = f"digest {link.id}"
        problems = []
        if {s for s, _ in actual} - {s for s, _ in link.row_hashes}:
            problems.append(f"{label}: rows remain under a retention anchor (forged?)")
        return problems + [p for p in chain.compare_rows(label, link.row_hashes, actual) if not p.endswith("inserted")]

    async def _stale_rows(self, session: AsyncSession, after: int) -> tuple[int, int] | None:
        """(first, last) seq of undigested rows past `after` that are older than stale_after."""
        first, last = (
            await session.execute(
                select(func.min(AuditRequestLog.seq), func.max(AuditRequestLog.seq)).where(
                    AuditRequestLog.seq > after, AuditRequestLog.created_at < utcnow() - self._policy.stale_after
                )
            )
        ).one()
        return (int(first), int(last)) if first is not None else None

    async def links(self) -> list[chain.Link]:
        async with self._sessions() as session:
            digests = (await session.execute(select(AuditDigest).order_by(AuditDigest.id))).scalars()
            return [link_of(d) for d in digests]

    async def verify(self, known: list[chain.Link] | None = None) -> Verification:
        """Read-only: checks the chain, its signatures, every digested row and `known` digests."""
        links = await self.links()
        result = Verification(digests_checked=len(links))
        result.problems += chain.check_links(
            links, self._policy.signing_key, self._policy.retention, self._policy.previous_signing_keys
        )
        result.problems += chain.compare_known(links, known or [])
        previous_last = 0
        async with self._sessions() as session:
            for link in links:
                if link.is_anchor:
                    previous_last = link.last_seq
                    result.problems += await self._check_anchor(session, link, result)
                    continue
                rows = (
                    await session.execute(
                        select(AuditRequestLog)
                        .where(AuditRequestLog.seq > previous_last, AuditRequestLog.seq <= link.last_seq)
                        .order_by(AuditRequestLog.seq)
                    )
                ).scalars()
                actual = [(r.seq, content_hash(r)) for r in rows]
                result.rows_checked += len(actual)
                result.problems += chain.compare_rows(f"digest {link.id}", link.row_hashes, actual)
                previous_last = link.last_seq
            stale = await self._stale_rows(session, previous_last)
            if stale:
                result.problems.append(
                    f"rows {stale[0]}..{stale[1]} are older than {self._policy.stale_after} but no digest covers "
                    "them (digests deleted?)"
                )
        result.ok = not result.problems
        return result
