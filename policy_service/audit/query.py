"""Audit queries: filters and stable cursor pagination (newest first, by sequence number)."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from policy_service.errors import InvalidArgument
from policy_service.storage.models import AuditRequestLog

MAX_PAGE = 500


@dataclass(frozen=True, slots=True)
class AuditFilter:
    org_slug: str | None = None
    since: datetime | None = None
    until: datetime | None = None
    toolkit_slug: str = ""
    tool: str = ""
    actor_id: str = ""
    status: str = ""
    approval_id: str = ""
    call_id: str = ""


def parse_cursor(token: str) -> int | None:
    if not token:
        return None
    try:
        return int(token)
    except ValueError as exc:
        raise InvalidArgument("bad page_token", "BAD_PAGE_TOKEN") from exc


async def query(
    session: AsyncSession, f: AuditFilter, page_size: int, page_token: str
) -> tuple[list[AuditRequestLog], str]:
    limit = min(max(page_size or 50, 1), MAX_PAGE)
    stmt = select(AuditRequestLog)
    if f.org_slug is not None:
        stmt = stmt.where(AuditRequestLog.org_slug == f.org_slug)
    if f.since is not None:
        stmt = stmt.where(AuditRequestLog.created_at >= f.since)
    if f.until is not None:
        stmt = stmt.where(AuditRequestLog.created_at < f.until)
    for column, value in (
        (AuditRequestLog.toolkit_slug, f.toolkit_slug),
        (AuditRequestLog.tool, f.tool),
        (AuditRequestLog.actor_id, f.actor_id),
        (AuditRequestLog.status, f.status),
        (AuditRequestLog.approval_id, f.approval_id),
        (AuditRequestLog.call_id, f.call_id),
    ):
        if value:
            stmt = stmt.where(column == value)
    cursor = parse_cursor(page_token)
    if cursor is not None:
        stmt = stmt.where(AuditRequestLog.seq < cursor)
    rows = list((await session.execute(stmt.order_by(AuditRequestLog.seq.desc()).limit(limit + 1))).scalars())
    next_token = str(rows[limit - 1].seq) if len(rows) > limit else ""
    return rows[:limit], next_token
