"""Audit queries: filters and stable cursor pagination (newest first, by sequence number).

A tool call is two append-only rows (the call, then its completion); queries return the
call row with its completion folded in, so a reader sees one record per request."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.orm import aliased

from policy_service.errors import InvalidArgument
from policy_service.storage.models import AuditRequestLog

MAX_PAGE = 500
_MAX_CURSOR = 2**62

Completion = aliased(AuditRequestLog, name="completion")


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


@dataclass(frozen=True, slots=True)
class AuditEntry:
    """A request's row and, for a finished tool call, its completion row."""

    row: AuditRequestLog
    completion: AuditRequestLog | None


def parse_cursor(token: str) -> int | None:
    if not token:
        return None
    if not token.isdigit() or len(token) > 19 or int(token) > _MAX_CURSOR:
        raise InvalidArgument("bad page_token", "BAD_PAGE_TOKEN")
    return int(token)


async def query(session: AsyncSession, f: AuditFilter, page_size: int, page_token: str) -> tuple[list[AuditEntry], str]:
    limit = min(max(page_size or 50, 1), MAX_PAGE)
    log = AuditRequestLog
    stmt = select(log, Completion).outerjoin(Completion, Completion.completes == log.call_id).where(log.completes == "")
    if f.org_slug is not None:
        stmt = stmt.where(log.org_slug == f.org_slug)
    if f.since is not None:
        stmt = stmt.where(log.created_at >= f.since)
    if f.until is not None:
        stmt = stmt.where(log.created_at < f.until)
    for column, value in (
        (log.toolkit_slug, f.toolkit_slug),
        (log.tool, f.tool),
        (log.actor_id, f.actor_id),
        (log.approval_id, f.approval_id),
        (log.call_id, f.call_id),
    ):
        if value:
            stmt = stmt.where(column == value)
    if f.status:
        stmt = stmt.where(func.coalesce(Completion.status, log.status) == f.status)
    cursor = parse_cursor(page_token)
    if cursor is not None:
        stmt = stmt.where(log.seq < cursor)
    found = (await session.execute(stmt.order_by(log.seq.desc()).limit(limit + 1))).all()
    entries = [AuditEntry(row, completion) for row, completion in found]
    next_token = str(entries[limit - 1].row.seq) if len(entries) > limit else ""
    return entries[:limit], next_token
