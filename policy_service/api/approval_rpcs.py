"""Admin RPCs for the approval queue and the audit log."""

from __future__ import annotations

from collections.abc import AsyncIterator
from datetime import UTC, datetime

import grpc

from policy_service._generated.monomcp.policy.v1 import admin_pb2, types_pb2
from policy_service.api import convert
from policy_service.api.admin_base import AdminBase
from policy_service.api.errors import abort_for, translated
from policy_service.approvals import store
from policy_service.audit import query as audit_query
from policy_service.errors import InvalidArgument
from policy_service.permissions.admin_access import admin_org, require_operator
from policy_service.storage.models import Approval


def _cursor(token: str) -> tuple[datetime, str] | None:
    if not token:
        return None
    try:
        stamp, ident = token.split("|", 1)
        return datetime.fromisoformat(stamp), ident
    except ValueError as exc:
        raise InvalidArgument("bad page_token", "BAD_PAGE_TOKEN") from exc


class ApprovalRpcs(AdminBase):
    @translated
    async def ListApprovals(
        self, request: admin_pb2.ListApprovalsRequest, context: grpc.aio.ServicerContext
    ) -> admin_pb2.ListApprovalsResponse:
        principal = await self._principal(context)
        limit = min(max(request.page_size or 50, 1), 500)
        async with self._sessions() as session, session.begin():
            org = await admin_org(session, principal, request.org_slug)
            await store.expire_stale(session, Approval.org_id == org.id)
            records = await store.list_for_org(
                session,
                org.id,
                convert.APPROVAL_STATUS_FROM_PB.get(request.status),
                limit + 1,
                _cursor(request.page_token),
            )
        token = ""
        if len(records) > limit:
            last = records[limit - 1].row
            token = f"{last.created_at.isoformat()}|{last.id}"
        return admin_pb2.ListApprovalsResponse(
            approvals=[convert.approval(store.for_viewer(r, principal)) for r in records[:limit]],
            next_page_token=token,
        )

    @translated
    async def GetApproval(
        self, request: admin_pb2.GetApprovalRequest, context: grpc.aio.ServicerContext
    ) -> types_pb2.Approval:
        principal = await self._principal(context)
        record = await self._gate.approval_status_for(principal, request.id)
        return convert.approval(record)

    @translated
    async def DecideApproval(
        self, request: admin_pb2.DecideApprovalRequest, context: grpc.aio.ServicerContext
    ) -> types_pb2.Approval:
        principal = await self._principal(context)
        async with self._gate.guard(), self._sessions() as session, session.begin():
            record = await store.decide(session, request.id, principal, request.approve, request.reason, self._ttls)
        self._watcher.poke()
        return convert.approval(store.for_viewer(record, principal))

    async def WatchApprovals(
        self, request: admin_pb2.WatchApprovalsRequest, context: grpc.aio.ServicerContext
    ) -> AsyncIterator[types_pb2.Approval]:
        try:
            principal = await self._principal(context)
            async with self._sessions() as session:
                org = await admin_org(session, principal, request.org_slug)
        except Exception as exc:
            await abort_for(context, exc, "WatchApprovals")
            return
        async for record in self._watcher.subscribe(org.id):
            yield convert.approval(store.for_viewer(record, principal))

    @translated
    async def QueryAudit(
        self, request: admin_pb2.QueryAuditRequest, context: grpc.aio.ServicerContext
    ) -> admin_pb2.QueryAuditResponse:
        principal = await self._principal(context)
        async with self._sessions() as session:
            org_slug: str | None
            if principal.is_operator and not request.org_slug:
                org_slug = None
            else:
                org_slug = (await admin_org(session, principal, request.org_slug)).slug
            flt = audit_query.AuditFilter(
                org_slug=org_slug,
                since=request.since.ToDatetime(tzinfo=UTC) if request.HasField("since") else None,
                until=request.until.ToDatetime(tzinfo=UTC) if request.HasField("until") else None,
                toolkit_slug=request.toolkit_slug,
                tool=request.tool,
                actor_id=request.actor_id,
                status=request.status,
                approval_id=request.approval_id,
                call_id=request.call_id,
            )
            rows, token = await audit_query.query(session, flt, request.page_size, request.page_token)
        return admin_pb2.QueryAuditResponse(records=[convert.audit_record(r) for r in rows], next_page_token=token)

    @translated
    async def VerifyAudit(
        self, request: admin_pb2.VerifyAuditRequest, context: grpc.aio.ServicerContext
    ) -> admin_pb2.VerifyAuditResponse:
        require_operator(await self._principal(context))
        await self._digester.write_digest()
        result = await self._digester.verify()
        return admin_pb2.VerifyAuditResponse(
            ok=result.ok,
            rows_checked=result.rows_checked,
            digests_checked=result.digests_checked,
            problems=result.problems,
        )
