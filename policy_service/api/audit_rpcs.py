"""Admin RPCs for the audit log (query, verify, digest export) and service identities."""

from __future__ import annotations

from datetime import UTC

import grpc

from policy_service._generated.monomcp.policy.v1 import admin_pb2
from policy_service.api import convert, validation
from policy_service.api.admin_base import AdminBase
from policy_service.api.errors import translated
from policy_service.audit import digest_wire, partitions
from policy_service.audit import query as audit_query
from policy_service.audit.retention import RetentionRefused
from policy_service.errors import FailedPrecondition, InvalidArgument
from policy_service.identity.services import ServiceRecord
from policy_service.permissions.admin_access import admin_org, require_operator
from policy_service.storage.models import utcnow
from policy_service.wire_enums import AUDIT_SOURCES


def _service(record: ServiceRecord) -> admin_pb2.ServiceIdentity:
    return admin_pb2.ServiceIdentity(
        id=record.id,
        name=record.name,
        scopes=list(record.scopes),
        created_at=convert.ts(record.created_at),
        revoked_at=convert.ts(record.revoked_at),
    )


class AuditRpcs(AdminBase):
    @translated
    async def QueryAudit(
        self, request: admin_pb2.QueryAuditRequest, context: grpc.aio.ServicerContext
    ) -> admin_pb2.QueryAuditResponse:
        principal = await self._principal(context)
        for field in ("org_slug", "toolkit_slug", "tool", "actor_id", "status", "approval_id", "call_id"):
            validation.text(getattr(request, field), field)
        validation.audit_page_token(request.page_token)
        if request.source and request.source not in AUDIT_SOURCES:
            raise InvalidArgument(f"source must be one of {', '.join(AUDIT_SOURCES)}", "BAD_SOURCE")
        async with self._sessions() as session:
            org_slug: str | None
            if principal.is_operator and not request.org_slug:
                org_slug = None
            else:
                org_slug = (await admin_org(session, principal, request.org_slug)).slug
            flt = audit_query.AuditFilter(
                org_slug=org_slug,
                since=validation.timestamp(request.since, "since") if request.HasField("since") else None,
                until=validation.timestamp(request.until, "until") if request.HasField("until") else None,
                toolkit_slug=request.toolkit_slug,
                tool=request.tool,
                actor_id=request.actor_id,
                status=request.status,
                approval_id=request.approval_id,
                call_id=request.call_id,
                source=request.source,
            )
            entries, token = await audit_query.query(session, flt, request.page_size, request.page_token)
        return admin_pb2.QueryAuditResponse(records=[convert.audit_record(e) for e in entries], next_page_token=token)

    @translated
    async def VerifyAudit(
        self, request: admin_pb2.VerifyAuditRequest, context: grpc.aio.ServicerContext
    ) -> admin_pb2.VerifyAuditResponse:
        require_operator(await self._principal(context))
        result = await self._digester.verify([digest_wire.from_message(d) for d in request.known_digests])
        return admin_pb2.VerifyAuditResponse(
            ok=result.ok,
            rows_checked=result.rows_checked,
            digests_checked=result.digests_checked,
            problems=result.problems,
        )

    @translated
    async def ExportAuditDigests(
        self, request: admin_pb2.ExportAuditDigestsRequest, context: grpc.aio.ServicerContext
    ) -> admin_pb2.ExportAuditDigestsResponse:
        require_operator(await self._principal(context))
        links = await self._digester.links()
        return admin_pb2.ExportAuditDigestsResponse(digests=[digest_wire.to_message(link) for link in links])

    @translated
    async def ApplyAuditRetention(
        self, request: admin_pb2.ApplyAuditRetentionRequest, context: grpc.aio.ServicerContext
    ) -> admin_pb2.ApplyAuditRetentionResponse:
        """An admin action: the interceptor appends its row to the chain, after the anchor."""
        require_operator(await self._principal(context))
        if not request.HasField("before"):
            raise InvalidArgument("before is required", "BEFORE_REQUIRED")
        before = validation.timestamp(request.before, "before")
        if before > utcnow():
            raise InvalidArgument("before is in the future", "BAD_TIMESTAMP")
        if not self._digester.retention_configured:
            raise FailedPrecondition(
                "retention is not configured: set MONOMCP_AUDIT_RETENTION_DAYS on the policy service "
                "(verify accepts a retention anchor only where retention is configured)",
                "RETENTION_NOT_CONFIGURED",
            )
        try:
            pruned = await self._digester.prune(before)
        except RetentionRefused as exc:
            raise FailedPrecondition(str(exc), "RETENTION_REFUSED") from None
        return admin_pb2.ApplyAuditRetentionResponse(
            rows_removed=pruned.rows,
            partitions_dropped=pruned.partitions,
            boundary=convert.ts(pruned.boundary),
            anchor_last_seq=pruned.anchor_seq,
            note=pruned.reason,
        )

    @translated
    async def PrepareAuditPartitions(
        self, request: admin_pb2.PrepareAuditPartitionsRequest, context: grpc.aio.ServicerContext
    ) -> admin_pb2.PrepareAuditPartitionsResponse:
        require_operator(await self._principal(context))
        ahead = request.months_ahead or partitions.AHEAD_MONTHS
        if not 0 <= ahead <= 120:
            raise InvalidArgument("months_ahead must be between 0 and 120", "BAD_MONTHS_AHEAD")
        created = await self._digester.prepare_partitions(ahead)
        async with self._sessions() as session:
            listed = await partitions.list_partitions(session)
            partitioned = await partitions.is_partitioned(session)
        return admin_pb2.PrepareAuditPartitionsResponse(
            partitioned=partitioned,
            created=created,
            partitions=[
                admin_pb2.AuditPartition(
                    name=p.name,
                    start=convert.ts(p.start.replace(tzinfo=UTC)) if p.start else None,
                    end=convert.ts(p.end.replace(tzinfo=UTC)) if p.end else None,
                    estimated_rows=p.rows,
                )
                for p in listed
            ],
        )

    @translated
    async def CreateServiceIdentity(
        self, request: admin_pb2.CreateServiceIdentityRequest, context: grpc.aio.ServicerContext
    ) -> admin_pb2.CreateServiceIdentityResponse:
        require_operator(await self._principal(context))
        record, secret = await self._services.create(request.name, request.scopes)
        return admin_pb2.CreateServiceIdentityResponse(identity=_service(record), secret=secret)

    @translated
    async def ListServiceIdentities(
        self, request: admin_pb2.ListServiceIdentitiesRequest, context: grpc.aio.ServicerContext
    ) -> admin_pb2.ListServiceIdentitiesResponse:
        require_operator(await self._principal(context))
        return admin_pb2.ListServiceIdentitiesResponse(identities=[_service(r) for r in await self._services.list()])

    @translated
    async def RevokeServiceIdentity(
        self, request: admin_pb2.RevokeServiceIdentityRequest, context: grpc.aio.ServicerContext
    ) -> admin_pb2.ServiceIdentity:
        require_operator(await self._principal(context))
        return _service(await self._services.revoke(request.id))
