"""Monthly range partitions of the audit log on Postgres (ADR 0022).

The key is `call_at` (a call's time, copied onto its completion), so a call and its
completion share a partition and retention drops whole months. Partitions are created ahead
(migration 0009, the policy service's maintenance round, `monomcp audit partitions`); a
DEFAULT partition catches a row outside every month, so an insert never fails for want of a
partition. SQLite stays one table: the same functions there delete rows instead."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime

from sqlalchemy import bindparam, text
from sqlalchemy.ext.asyncio import AsyncSession

from policy_service.storage.models import UTCDateTime

TABLE = "audit_request_logs"
DEFAULT = f"{TABLE}_default"
AHEAD_MONTHS = 3


def month_start(value: datetime) -> datetime:
    value = value.astimezone(UTC).replace(tzinfo=None) if value.tzinfo else value
    return datetime(value.year, value.month, 1)


def next_month(value: datetime) -> datetime:
    return datetime(value.year + value.month // 12, value.month % 12 + 1, 1)


def partition_name(start: datetime) -> str:
    return f"{TABLE}_p{start:%Y_%m}"


def months(first: datetime, last: datetime) -> list[datetime]:
    """Month starts from first's month to last's month, inclusive."""
    out, current = [], month_start(first)
    while current <= month_start(last):
        out.append(current)
        current = next_month(current)
    return out


def create_partition_sql(start: datetime) -> str:
    return (
        f"CREATE TABLE IF NOT EXISTS {partition_name(start)} PARTITION OF {TABLE} "
        f"FOR VALUES FROM ('{start:%Y-%m-%d}') TO ('{next_month(start):%Y-%m-%d}')"
    )


@dataclass(frozen=True, slots=True)
class Partition:
    name: str
    start: datetime | None  # None: the DEFAULT partition
    end: datetime | None
    rows: int  # the planner's estimate (reltuples), not a count: listing stays instant


async def is_partitioned(session: AsyncSession) -> bool:
    if session.get_bind().dialect.name != "postgresql":
        return False
    found = await session.execute(
        text("SELECT 1 FROM pg_partitioned_table WHERE partrelid = to_regclass(:t)"), {"t": TABLE}
    )
    return found.first() is not None


async def list_partitions(session: AsyncSession) -> list[Partition]:
    if not await is_partitioned(session):
        return []
    rows = await session.execute(
        text(
            "SELECT c.relname, pg_get_expr(c.relpartbound, c.oid), greatest(c.reltuples, 0)::bigint "
            "FROM pg_inherits i JOIN pg_class c ON c.oid = i.inhrelid "
            "WHERE i.inhparent = to_regclass(:t) ORDER BY c.relname"
        ),
        {"t": TABLE},
    )
    out = []
    for name, bound, estimate in rows:
        if bound == "DEFAULT":
            out.append(Partition(name, None, None, int(estimate)))
            continue
        # FOR VALUES FROM ('2026-11-01 00:00:00') TO ('2026-12-01 00:00:00')
        lo, hi = (part.split("'")[1] for part in bound.split(" TO "))
        out.append(Partition(name, datetime.fromisoformat(lo), datetime.fromisoformat(hi), int(estimate)))
    return sorted(out, key=lambda p: (p.start is None, p.start or datetime.min))


async def ensure_ahead(session: AsyncSession, now: datetime, ahead: int = AHEAD_MONTHS) -> list[str]:
    """Creates the monthly partitions from this month to `ahead` months on; returns the new ones."""
    if not await is_partitioned(session):
        return []
    await session.execute(text("SELECT pg_advisory_xact_lock(7239012)"))  # one creator across replicas
    existing = {p.name for p in await list_partitions(session)}
    created = []
    start = month_start(now)
    for _ in range(ahead + 1):
        if partition_name(start) not in existing:
            await session.execute(text(create_partition_sql(start)))
            created.append(partition_name(start))
        start = next_month(start)
    return created


async def retention_boundary(session: AsyncSession, cutoff: datetime) -> datetime:
    """The time before which rows go: the start of the month partition holding `cutoff`
    (whole partitions only), or `cutoff` itself where there is none (SQLite, DEFAULT)."""
    cutoff = cutoff.astimezone(UTC).replace(tzinfo=None) if cutoff.tzinfo else cutoff
    for p in await list_partitions(session):
        if p.start is not None and p.end is not None and p.start <= cutoff < p.end:
            return p.start.replace(tzinfo=UTC)
    return cutoff.replace(tzinfo=UTC)


async def remove_before(session: AsyncSession, boundary: datetime) -> tuple[int, list[str]]:
    """Removes every row with call_at < boundary: whole month partitions are dropped, rows
    elsewhere (the DEFAULT partition, SQLite) deleted. Returns (rows removed, partitions dropped)."""
    naive = boundary.astimezone(UTC).replace(tzinfo=None) if boundary.tzinfo else boundary
    dropped, removed = [], 0
    for p in await list_partitions(session):
        if p.end is not None and p.end <= naive:
            count = await session.execute(text(f"SELECT count(*) FROM {p.name}"))
            removed += int(count.scalar_one())
            await session.execute(text(f"DROP TABLE {p.name}"))
            dropped.append(p.name)
    delete = text(f"DELETE FROM {TABLE} WHERE call_at < :b").bindparams(bindparam("b", type_=UTCDateTime()))
    result = await session.execute(delete, {"b": naive.replace(tzinfo=UTC)})
    removed += int(getattr(result, "rowcount", 0) or 0)
    return removed, dropped
