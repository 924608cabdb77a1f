"""The approval queue: create-or-find, atomic consumption, decisions, expiry, listing.

Correctness rests on the database: a partial unique index keeps one live approval per
binding, and consumption is a conditional UPDATE, so N concurrent re-calls after one
approval see exactly one winner on SQLite and Postgres alike.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import Select, and_, func, select, true, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession

from policy_service.approvals.people import approver_conflict
from policy_service.approvals.policies import Frozen, eligibility_problem, voter_key, window_condition
from policy_service.errors import FailedPrecondition, InvalidArgument, NotFound, PermissionDenied
from policy_service.identity import directory
from policy_service.identity.principal import Principal
from policy_service.permissions.conditions import Facts
from policy_service.storage.models import Approval, ApprovalVote, Organization, Role, Toolkit, new_id, utcnow

LIVE = ("pending", "approved")
# The reason of a denial the requester made by cancelling its task (policy_service.approvals.tasks).
WITHDRAWN = "withdrawn by the requester"
# Once an approval has run, identical calls within this window are its racing re-calls:
# they are told which call used it instead of opening a new request nobody asked for.
DEFAULT_REUSE_WINDOW = timedelta(seconds=30)


@dataclass(frozen=True, slots=True)
class Binding:
    org_id: str
    principal: Principal
    toolkit_id: str
    tool: str
    arguments_json: str  # redacted, kept for good
    arguments_sha256: str
    arguments_exact: str = ""  # canonical, shown to approvers only while the approval is live
    # The tool's approval policy (ADR 0021; None: one admin, this exact call) and what a
    # window's condition looks at.
    policy: Frozen | None = None
    facts: Facts | None = None

    def where(self) -> Any:
        return and_(
            Approval.org_id == self.org_id,
            Approval.principal_id == self.principal.id,
            Approval.toolkit_id == self.toolkit_id,
            Approval.tool == self.tool,
            Approval.arguments_sha256 == self.arguments_sha256,
        )


@dataclass(frozen=True, slots=True)
class ApprovalRecord:
    row: Approval
    org_slug: str
    toolkit_org_slug: str
    toolkit_slug: str
    # The arguments as the viewer may see them ('' = the redacted copy); see `for_viewer`.
    shown_arguments: str = ""
    # Where the org announces approvals ("slack approvals", …), on a requester's pending result.
    notified: tuple[str, ...] = ()


@dataclass(frozen=True, slots=True)
class TTLs:
    pending: timedelta
    approved: timedelta
    reuse_window: timedelta = DEFAULT_REUSE_WINDOW


def _with_slugs() -> Select[Approval, str, str, str]:
    toolkit_org = Organization.__table__.alias("toolkit_org")
    return (
        select(Approval, Organization.slug, toolkit_org.c.slug, Toolkit.slug)
        .join(Organization, Organization.id == Approval.org_id)
        .join(Toolkit, Toolkit.id == Approval.toolkit_id)
        .join(toolkit_org, toolkit_org.c.id == Toolkit.org_id)
    )


async def load(session: AsyncSession, approval_id: str) -> ApprovalRecord:
    row = (await session.execute(_with_slugs().where(Approval.id == approval_id))).first()
    if row is None:
        raise NotFound("approval not found", "APPROVAL_NOT_FOUND")
    return ApprovalRecord(row[0], row[1], row[2], row[3])


async def expire_stale(session: AsyncSession, where: Any = None) -> None:
    """Expire live approvals past their expiry, purging their exact arguments."""
    now = utcnow()
    await session.execute(
        update(Approval)
        .where(true() if where is None else where, Approval.status.in_(LIVE), Approval.expires_at <= now)
        .values(status="expired", updated_at=now, arguments_exact="")
    )


async def try_consume(session: AsyncSession, binding: Binding, call_id: str) -> str | None:
    """Consume the binding's approved approval for `call_id`; its id, or None if there is none.

    The consume path never creates anything; it purges the exact arguments it released."""
    now = utcnow()
    result = await session.execute(
        update(Approval)
        .where(binding.where(), Approval.status == "approved", Approval.expires_at > now, Approval.window_when == "")
        .values(status="consumed", consumed_by_call_id=call_id, updated_at=now, arguments_exact="")
        .returning(Approval.id)
    )
    return result.scalar_one_or_none()


async def try_window(session: AsyncSession, binding: Binding) -> str | None:
    """A granted window of this principal and tool that covers these arguments: its id, or None.
    A window is not consumed: every covered call until it ends is allowed (and audited with it)."""
    now = utcnow()
    windows = (
        await session.execute(
            select(Approval.id, Approval.arguments_sha256, Approval.window_when).where(
                Approval.org_id == binding.org_id,
                Approval.principal_id == binding.principal.id,
                Approval.toolkit_id == binding.toolkit_id,
                Approval.tool == binding.tool,
                Approval.status == "approved",
                Approval.window_when != "",
                Approval.window_until > now,
            )
        )
    ).all()
    for approval_id, sha256, when in windows:
        if sha256 == binding.arguments_sha256:
            return str(approval_id)
        if binding.facts is not None and window_condition(when).evaluate(binding.facts).matched:
            return str(approval_id)
    return None


async def recently_consumed(session: AsyncSession, binding: Binding, since: datetime) -> Approval | None:
    """The binding's approval that some call used at or after `since`, if any."""
    return (
        await session.execute(
            select(Approval)
            .where(binding.where(), Approval.status == "consumed", Approval.updated_at >= since)
            .order_by(Approval.updated_at.desc())
            .limit(1)
        )
    ).scalar_one_or_none()


async def find_live(session: AsyncSession, binding: Binding) -> Approval | None:
    return (
        await session.execute(select(Approval).where(binding.where(), Approval.status.in_(LIVE)))
    ).scalar_one_or_none()


async def latest_denial(session: AsyncSession, binding: Binding, since: datetime) -> Approval | None:
    """An admin's recent denial of this binding (a requester's own withdrawal does not count:
    asking again after cancelling a task opens a new request)."""
    return (
        await session.execute(
            select(Approval)
            .where(
                binding.where(),
                Approval.status == "denied",
                Approval.decided_at >= since,
                Approval.reason != WITHDRAWN,
            )
            .order_by(Approval.decided_at.desc())
            .limit(1)
        )
    ).scalar_one_or_none()


async def create_pending(session: AsyncSession, binding: Binding, ttl: timedelta) -> tuple[Approval, bool]:
    """Insert a pending approval, or return the one a concurrent caller just inserted."""
    now = utcnow()
    approval = Approval(
        id=new_id(),
        org_id=binding.org_id,
        principal_kind=binding.principal.kind,
        principal_id=binding.principal.id,
        principal_display=binding.principal.display,
        principal_role=binding.principal.role,
        toolkit_id=binding.toolkit_id,
        tool=binding.tool,
        arguments_json=binding.arguments_json,
        arguments_exact=binding.arguments_exact,
        arguments_sha256=binding.arguments_sha256,
        status="pending",
        created_at=now,
        updated_at=now,
        expires_at=now + ttl,
    )
    if binding.policy is not None:
        approval.required_approvals = binding.policy.approvers
        approval.policy_json = binding.policy.to_json()
        approval.window_when = binding.policy.window.when if binding.policy.window else ""
    try:
        async with session.begin_nested():
            session.add(approval)
        return approval, True
    except IntegrityError:
        existing = await find_live(session, binding)
        if existing is None:
            raise
        return existing, False


def may_view(record: ApprovalRecord, principal: Principal) -> bool:
    row = record.row
    return (
        principal.is_operator
        or (principal.org_id == row.org_id and principal.is_admin)
        or (principal.id == row.principal_id and principal.kind == row.principal_kind)
    )


def for_viewer(record: ApprovalRecord, viewer: Principal) -> ApprovalRecord:
    """The record showing the exact arguments to those who may view it, while it is live.

    Approvers must see exactly what will run; the requester sees what it sent (the front
    re-runs a task from it). Anyone else, and everyone once it is used, denied or expired,
    sees the redacted copy the audit log keeps."""
    row = record.row
    if row.arguments_exact and row.status in LIVE and may_view(record, viewer):
        return replace(record, shown_arguments=row.arguments_exact)
    return record


async def _requester_is_admin(session: AsyncSession, row: Approval) -> bool:
    """Whether the requester's role (as recorded) is an admin role; unknown counts as admin."""
    is_admin = (
        await session.execute(select(Role.is_admin).where(Role.org_id == row.org_id, Role.name == row.principal_role))
    ).scalar_one_or_none()
    return True if is_admin is None else bool(is_admin)


async def decide(
    session: AsyncSession, approval_id: str, admin: Principal, approve: bool, reason: str, ttls: TTLs
) -> ApprovalRecord:
    record = await load(session, approval_id)
    row = record.row
    if not admin.is_operator and (admin.org_id != row.org_id or not admin.is_admin):
        # Not this org's admin: indistinguishable from a missing approval.
        if admin.org_id != row.org_id:
            raise NotFound("approval not found", "APPROVAL_NOT_FOUND")
        raise PermissionDenied("only org admins decide approvals", "NOT_ADMIN")
    requester_person = await directory.person_of(session, row.principal_kind, row.principal_id)
    is_admin = await _requester_is_admin(session, row)
    conflict = approver_conflict(row.principal_kind, row.principal_id, is_admin, admin, requester_person)
    if conflict is not None:
        raise PermissionDenied(conflict, "SELF_APPROVAL")
    if not approve and not reason.strip():
        raise InvalidArgument("a denial needs a reason", "REASON_REQUIRED")
    frozen = Frozen.from_json(row.policy_json)
    problem = eligibility_problem(frozen, admin, row.principal_role) if approve else None
    if problem is not None:
        raise PermissionDenied(problem, "NOT_AN_APPROVER")
    now = utcnow()
    values: dict[str, Any] = {"decided_by": admin.display, "decided_at": now, "updated_at": now}
    if approve and row.required_approvals > 1:
        votes = await _vote(session, row, admin, now)
        if votes < row.required_approvals:
            session.expire_all()
            return await load(session, approval_id)
        values["decided_by"] = await _voters(session, row.id)
    if approve:
        valid = timedelta(seconds=frozen.valid_for_seconds) if frozen.valid_for_seconds else ttls.approved
        if frozen.window is not None:
            valid = timedelta(seconds=frozen.window.seconds)
            values["window_until"] = now + valid
        values |= {"status": "approved", "expires_at": now + valid, "reason": reason.strip()}
        values["approvals_count"] = max(row.required_approvals, 1)
    else:
        values |= {"status": "denied", "reason": reason.strip(), "arguments_exact": ""}
    result = await session.execute(
        update(Approval)
        .where(Approval.id == approval_id, Approval.status == "pending", Approval.expires_at > now)
        .values(**values)
        .returning(Approval.id)
    )
    if result.scalar_one_or_none() is None:
        await expire_stale(session, Approval.id == approval_id)
        await session.flush()
        current = await load(session, approval_id)
        raise FailedPrecondition(f"approval is {current.row.status}, not pending", "APPROVAL_NOT_PENDING")
    session.expire_all()
    return await load(session, approval_id)


async def _vote(session: AsyncSession, row: Approval, approver: Principal, now: datetime) -> int:
    """Record one distinct approver's yes on an n-of-m approval; the number of yeses so far.

    The approval row is locked first (a no-op UPDATE), so concurrent votes on several replicas
    count one after another and exactly one of them sees the last vote needed."""
    locked = await session.execute(
        update(Approval)
        .where(Approval.id == row.id, Approval.status == "pending", Approval.expires_at > now)
        .values(updated_at=now)
        .returning(Approval.id)
    )
    if locked.scalar_one_or_none() is None:
        await expire_stale(session, Approval.id == row.id)
        await session.flush()
        current = await load(session, row.id)
        raise FailedPrecondition(f"approval is {current.row.status}, not pending", "APPROVAL_NOT_PENDING")
    key = voter_key(approver)
    if not key:
        raise PermissionDenied(
            "this approval needs several distinct people: approve signed in, or with a key you own",
            "APPROVER_NOT_A_PERSON",
        )
    try:
        async with session.begin_nested():
            session.add(ApprovalVote(approval_id=row.id, voter_key=key, voter_display=approver.display, created_at=now))
    except IntegrityError:
        raise FailedPrecondition("you have already approved this request", "ALREADY_APPROVED") from None
    count = (
        await session.execute(select(func.count()).select_from(ApprovalVote).where(ApprovalVote.approval_id == row.id))
    ).scalar_one()
    await session.execute(update(Approval).where(Approval.id == row.id).values(approvals_count=count))
    return int(count)


async def _voters(session: AsyncSession, approval_id: str) -> str:
    names = await session.execute(
        select(ApprovalVote.voter_display)
        .where(ApprovalVote.approval_id == approval_id)
        .order_by(ApprovalVote.created_at)
    )
    return ", ".join(names.scalars())[:320]


async def list_for_org(
    session: AsyncSession, org_id: str | None, status: str | None, limit: int, before: tuple[datetime, str] | None
) -> list[ApprovalRecord]:
    query = _with_slugs()
    if org_id is not None:
        query = query.where(Approval.org_id == org_id)
    if status:
        query = query.where(Approval.status == status)
    if before is not None:
        created, ident = before
        query = query.where(
            (Approval.created_at < created) | ((Approval.created_at == created) & (Approval.id < ident))
        )
    rows = (await session.execute(query.order_by(Approval.created_at.desc(), Approval.id.desc()).limit(limit))).all()
    return [ApprovalRecord(r[0], r[1], r[2], r[3]) for r in rows]


async def changed_since(session: AsyncSession, org_id: str | None, since: datetime) -> list[ApprovalRecord]:
    query = _with_slugs().where(Approval.updated_at > since)
    if org_id is not None:
        query = query.where(Approval.org_id == org_id)
    rows = (await session.execute(query.order_by(Approval.updated_at).limit(500))).all()
    return [ApprovalRecord(r[0], r[1], r[2], r[3]) for r in rows]
