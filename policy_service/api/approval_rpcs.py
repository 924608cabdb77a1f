"""Admin RPCs for the approval queue."""

from __future__ import annotations

from collections.abc import AsyncIterator

import grpc

from policy_service._generated.monomcp.policy.v1 import admin_pb2, types_pb2
from policy_service.api import convert, validation
from policy_service.api.admin_base import AdminBase
from policy_service.api.errors import abort_for, translated
from policy_service.approvals import store
from policy_service.permissions.admin_access import admin_org
from policy_service.storage.models import Approval


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
                validation.approval_cursor(request.page_token),
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
        validation.text(request.id, "id")
        record = await self._gate.approval_status_for(principal, request.id)
        return convert.approval(record)

    @translated
    async def DecideApproval(
        self, request: admin_pb2.DecideApprovalRequest, context: grpc.aio.ServicerContext
    ) -> types_pb2.Approval:
        principal = await self._principal(context)
        validation.text(request.id, "id")
        validation.text(request.reason, "reason", 2000, multiline=True)
        async with self._gate.guard(), self._sessions() as session, session.begin():
            record = await store.decide(session, request.id, principal, request.approve, request.reason, self._ttls)
        self._gate.on_approval_change()  # the queue's watchers and the notification dispatcher
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
