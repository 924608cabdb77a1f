"""Approval tasks (MCP 2025-11-25): one row per task-augmented request, waiting on an approval.

The approval stays the single source of truth for whether and when the call runs (consuming
it is still the one atomic step, so a call runs once however many tasks or replicas wait on
it). A task adds what the protocol needs on top: an id per request, an owner, a lifetime,
cancellation, and the exact result of the run kept until the task expires, so any replica
can hand it out (docs/adr/0016-approval-tasks.md).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy import ColumnElement, and_, delete, select, update
from sqlalchemy.ext.asyncio import AsyncSession

from policy_service.approvals import store
from policy_service.errors import FailedPrecondition, InvalidArgument, NotFound
from policy_service.identity.principal import Principal
from policy_service.storage.models import Approval, ApprovalTask, AuditRequestLog, new_id, utcnow

# A task outlives its approval's wait by this much, so a decided task's result can be fetched.
AFTER_DECISION = timedelta(hours=1)
DEFAULT_TTL = timedelta(hours=1)
MAX_TTL = timedelta(days=7)
# The exact result kept for a task; larger results are refused with a note (the audit keeps its copy).
MAX_RESULT_BYTES = 8 * 1024 * 1024
WITHDRAWN = store.WITHDRAWN
REFUSED = "refused"  # result_status of a result the gateway wrote because the call was refused


@dataclass(frozen=True, slots=True)
class TaskRecord:
    row: ApprovalTask
    approval: store.ApprovalRecord
    # Audit completion status of the call that consumed the approval ("" while none).
    consumer_status: str


def _owned_by(principal: Principal) -> ColumnElement[bool]:
    return and_(ApprovalTask.principal_kind == principal.kind, ApprovalTask.principal_id == principal.id)


def _ttl(requested_ms: int, approval: Approval, now: datetime) -> timedelta:
    """The client's ttl, at least until the approval can no longer be decided (plus an hour
    to fetch the result), and at most a week unless the approval itself waits longer."""
    max_ms = int(MAX_TTL.total_seconds() * 1000)
    wanted = timedelta(milliseconds=min(requested_ms, max_ms)) if requested_ms > 0 else DEFAULT_TTL
    floor = approval.expires_at - now + AFTER_DECISION
    return max(min(wanted, MAX_TTL), floor)


async def purge_expired(session: AsyncSession) -> None:
    """Expired tasks go, their kept results with them."""
    await session.execute(delete(ApprovalTask).where(ApprovalTask.expires_at <= utcnow()))


async def create(
    session: AsyncSession, principal: Principal, toolkit_id: str, approval_id: str, ttl_ms: int
) -> TaskRecord:
    await purge_expired(session)
    record = await store.load(session, approval_id)
    row = record.row
    if (row.principal_kind, row.principal_id, row.toolkit_id) != (principal.kind, principal.id, toolkit_id):
        raise NotFound("approval not found", "APPROVAL_NOT_FOUND")
    if row.status != "pending":
        raise FailedPrecondition(f"approval is {row.status}, not pending", "APPROVAL_NOT_PENDING")
    now = utcnow()
    task = ApprovalTask(
        id=new_id(),
        approval_id=row.id,
        principal_kind=principal.kind,
        principal_id=principal.id,
        toolkit_id=toolkit_id,
        status="live",
        result_status="",
        result_json="",
        result_call_id="",
        created_at=now,
        updated_at=now,
        expires_at=now + _ttl(ttl_ms, row, now),
    )
    session.add(task)
    await session.flush()
    return TaskRecord(task, store.for_viewer(record, principal), "")


async def _consumer_status(session: AsyncSession, approval: Approval) -> str:
    if not approval.consumed_by_call_id:
        return ""
    found = await session.execute(
        select(AuditRequestLog.status).where(AuditRequestLog.completes == approval.consumed_by_call_id).limit(1)
    )
    return found.scalar_one_or_none() or ""


async def _record(session: AsyncSession, task: ApprovalTask, principal: Principal) -> TaskRecord:
    await store.expire_stale(session, Approval.id == task.approval_id)
    approval = await store.load(session, task.approval_id)
    return TaskRecord(task, store.for_viewer(approval, principal), await _consumer_status(session, approval.row))


async def get(session: AsyncSession, principal: Principal, toolkit_id: str, task_id: str) -> TaskRecord:
    """The principal's unexpired task on this toolkit; anything else is NotFound."""
    task = (
        await session.execute(
            select(ApprovalTask).where(
                ApprovalTask.id == task_id,
                _owned_by(principal),
                ApprovalTask.toolkit_id == toolkit_id,
                ApprovalTask.expires_at > utcnow(),
            )
        )
    ).scalar_one_or_none()
    if task is None:
        raise NotFound("task not found", "TASK_NOT_FOUND")
    return await _record(session, task, principal)


def parse_cursor(cursor: str) -> tuple[datetime, str] | None:
    if not cursor:
        return None
    created, _, ident = cursor.partition("|")
    try:
        when = datetime.fromisoformat(created)
    except ValueError:
        raise InvalidArgument("invalid cursor", "CURSOR") from None
    if len(ident) != 32 or when.tzinfo is None:
        raise InvalidArgument("invalid cursor", "CURSOR")
    return when, ident


async def list_owned(
    session: AsyncSession, principal: Principal, toolkit_id: str, cursor: str, limit: int
) -> tuple[list[TaskRecord], str]:
    before = parse_cursor(cursor)
    query = select(ApprovalTask).where(
        _owned_by(principal), ApprovalTask.toolkit_id == toolkit_id, ApprovalTask.expires_at > utcnow()
    )
    if before is not None:
        created, ident = before
        query = query.where(
            (ApprovalTask.created_at < created) | ((ApprovalTask.created_at == created) & (ApprovalTask.id < ident))
        )
    rows = list(
        (
            await session.execute(
                query.order_by(ApprovalTask.created_at.desc(), ApprovalTask.id.desc()).limit(limit + 1)
            )
        ).scalars()
    )
    next_cursor = ""
    if len(rows) > limit:
        last = rows[limit - 1]
        next_cursor = f"{last.created_at.isoformat()}|{last.id}"
    return [await _record(session, row, principal) for row in rows[:limit]], next_cursor


async def cancel(session: AsyncSession, principal: Principal, toolkit_id: str, task_id: str) -> TaskRecord:
    """Withdraws the task's approval while it is still live, atomically against its use."""
    record = await get(session, principal, toolkit_id, task_id)
    task = record.row
    if task.status == "cancelled":
        raise FailedPrecondition("the task is already cancelled", "TASK_TERMINAL")
    if task.result_status:
        raise FailedPrecondition("the task already finished", "TASK_TERMINAL")
    now = utcnow()
    withdrawn = await session.execute(
        update(Approval)
        .where(Approval.id == task.approval_id, Approval.status.in_(store.LIVE), Approval.expires_at > now)
        .values(
            status="denied",
            reason=WITHDRAWN,
            decided_by=principal.display,
            decided_at=now,
            updated_at=now,
            arguments_exact="",
        )
        .returning(Approval.id)
    )
    if withdrawn.scalar_one_or_none() is None:
        status = record.approval.row.status
        raise FailedPrecondition(f"the task's approval is {status}: it can no longer be cancelled", "TASK_TERMINAL")
    await session.execute(
        update(ApprovalTask).where(ApprovalTask.id == task.id).values(status="cancelled", updated_at=now)
    )
    session.expire_all()
    return await get(session, principal, toolkit_id, task_id)


async def keep_result(session: AsyncSession, approval_id: str, call_id: str, status: str, result_json: str) -> None:
    """The run's result, for every live task on the approval that has none yet."""
    if len(result_json.encode()) > MAX_RESULT_BYTES:
        status = "too_large"
        result_json = ""
    await session.execute(
        update(ApprovalTask)
        .where(ApprovalTask.approval_id == approval_id, ApprovalTask.status == "live", ApprovalTask.result_status == "")
        .values(result_status=status[:16], result_json=result_json, result_call_id=call_id, updated_at=utcnow())
    )


async def settle(
    session: AsyncSession, principal: Principal, toolkit_id: str, task_id: str, result_json: str
) -> TaskRecord:
    """A refusal the gateway met when it tried to run the approved call ends the owner's tasks
    on that approval (nothing ran; the approval was not used)."""
    record = await get(session, principal, toolkit_id, task_id)
    await session.execute(
        update(ApprovalTask)
        .where(
            ApprovalTask.approval_id == record.row.approval_id,
            _owned_by(principal),
            ApprovalTask.status == "live",
            ApprovalTask.result_status == "",
        )
        .values(result_status=REFUSED, result_json=result_json, updated_at=utcnow())
    )
    session.expire_all()
    return await get(session, principal, toolkit_id, task_id)
