"""Admin RPCs for permissions as code (ADR 0021): export and apply an org's policy file."""

from __future__ import annotations

import asyncio

import grpc

from policy_service._generated.monomcp.policy.v1 import admin_pb2
from policy_service.api import convert
from policy_service.api.admin_audit import record_action
from policy_service.api.admin_base import AdminBase
from policy_service.api.errors import translated
from policy_service.errors import InvalidArgument, PolicyError
from policy_service.identity.principal import Principal
from policy_service.permissions.admin_access import admin_org
from policy_service.policies import store
from policy_service.policies.document import PolicyFileError, parse, to_yaml


def _live(live: store.Live) -> admin_pb2.PolicyVersionInfo:
    return admin_pb2.PolicyVersionInfo(
        version=live.version, applied_by=live.applied_by, applied_at=convert.ts(live.applied_at)
    )


class PolicyRpcs(AdminBase):
    @translated
    async def ExportPolicy(
        self, request: admin_pb2.ExportPolicyRequest, context: grpc.aio.ServicerContext
    ) -> admin_pb2.PolicyFile:
        principal = await self._principal(context)
        async with self._sessions() as session:
            org = await admin_org(session, principal, request.org_slug)
            document = await store.current_document(session, org)
            live, _ = await store.live_version(session, org.id)
        header = f"MonoMCP policy of org {org.slug}: live version {live.version}"
        if live.version:
            header += f", applied by {live.applied_by} at {live.applied_at.isoformat(timespec='seconds')}"
        return admin_pb2.PolicyFile(org_slug=org.slug, yaml=to_yaml(document, header), live=_live(live))

    @translated
    async def ApplyPolicy(
        self, request: admin_pb2.ApplyPolicyRequest, context: grpc.aio.ServicerContext
    ) -> admin_pb2.ApplyPolicyResponse:
        principal = await self._principal(context)
        if request.dry_run:
            return await self._apply(principal, request)
        payload: dict[str, object] = {"org_slug": request.org_slug or principal.org_slug, "dry_run": False}
        status, error = "error", "internal error"
        diff: dict[str, object] | None = None
        try:
            response = await self._apply(principal, request)
            status, error = "ok", ""
            # The same before/after as every admin row (api/admin_snapshots.py): one entry per rule.
            named = [(f"{c.toolkit} {c.tool} {c.field}", c) for c in response.changes]
            diff = {
                "before": {name: c.before or None for name, c in named},
                "after": {name: c.after or None for name, c in named},
            }
            payload |= {
                "version": response.live.version,
                "changes": [
                    f"{c.action} {c.toolkit} {c.tool} {c.field}: {c.before} -> {c.after}" for c in response.changes
                ],
            }
            return response
        except PolicyError as exc:
            status, error = exc.reason.lower(), exc.message
            raise
        finally:
            # One admin action per apply, recording what changed (not the file sent).
            await record_action(
                self._gate, self._services, context, principal, "ApplyPolicy", payload, status, error, diff
            )

    async def _apply(
        self, principal: Principal, request: admin_pb2.ApplyPolicyRequest
    ) -> admin_pb2.ApplyPolicyResponse:
        try:
            # Up to a megabyte of YAML is seconds of CPU: parse it off the event loop, which
            # serves every tenant's hot-path calls.
            parsed = await asyncio.to_thread(parse, request.yaml)
        except PolicyFileError as exc:
            raise InvalidArgument(str(exc), "POLICY_INVALID") from None
        try:
            if request.dry_run:
                async with self._sessions() as session:
                    org = await admin_org(session, principal, request.org_slug)
                    result = await store.apply(session, org, parsed, principal, dry_run=True)
            else:
                async with self._gate.guard(), self._tx() as session:
                    org = await admin_org(session, principal, request.org_slug)
                    result = await store.apply(session, org, parsed, principal, dry_run=False)
        except PolicyFileError as exc:
            raise InvalidArgument(str(exc), "POLICY_INVALID") from None
        return admin_pb2.ApplyPolicyResponse(
            changes=[admin_pb2.PolicyChange(**c.to_json()) for c in result.changes],
            applied=result.applied,
            live=_live(result.live),
        )
