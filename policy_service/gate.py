"""The one path that decides every MCP request: identity → visibility → permission →
approval, with the audit row written before the answer. The gRPC layer only translates."""

from __future__ import annotations

import dataclasses
import json
import re
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, replace
from datetime import timedelta
from typing import Any

from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from policy_service.approvals import recall
from policy_service.approvals import store as approvals
from policy_service.approvals.binding import arguments_sha256, canonical_json
from policy_service.approvals.policies import Frozen
from policy_service.audit.redaction import Redactor
from policy_service.audit.sinks import Completion
from policy_service.audit.writer import AuditLog, CallNotStarted, CompletionConflict
from policy_service.errors import FailedPrecondition, InvalidArgument, NotFound, PolicyError, Unauthenticated
from policy_service.identity.authenticator import Authenticator
from policy_service.identity.principal import Principal
from policy_service.identity.services import ServiceCaller
from policy_service.notifications import channels as notification_channels
from policy_service.observability.tracing import current_trace_id
from policy_service.permissions import tool_pages
from policy_service.permissions.catalogue import Catalogue, ResolvedTool, ToolkitView, with_tools
from policy_service.permissions.condition_rules import Decision, OrgConditions, facts_of, listed
from policy_service.permissions.conditions import Facts
from policy_service.storage.database import WriteGuard
from policy_service.storage.models import Approval, new_id, utcnow

# Redacted paths are recorded relative to these roots, e.g. "request.arguments.password".
REQUEST_ROOT = "request"
RESPONSE_ROOT = "response"
# An admin row's before/after of what it changed (its response_payload).
CHANGE_ROOT = "change"

_APPROVAL_ID = re.compile(r"[0-9a-f]{32}")
# The gateway's own tool, answered by the front itself (recorded, never authorized).
BUILT_IN_TOOL = "approval_status"

# What RecordRequest may store as a status: a short word ("started" belongs to authorized calls).
_RECORD_STATUS = re.compile(r"[a-z][a-z_]{0,23}")

FINAL_CALL_STATUSES = frozenset({"ok", "tool_error", "backend_error", "timeout", "invalid", "error", "cancelled"})

# Who blocked a tool, as the caller reads it (it said "for your role" when the toolkit's owner
# blocked it for everyone, sending people to ask for a role that would not help).
_BLOCKED_BY = {
    "role_override": "for your role",
    "org_default": "by your org's default",
    "tool_default": "by the toolkit's owner",
}


@dataclass(frozen=True, slots=True)
class RequestFacts:
    request_id: str = ""
    client_address: str = ""
    user_agent: str = ""
    protocol_version: str = ""


@dataclass(frozen=True, slots=True)
class Authorization:
    decision: str  # "allow" | "pending_approval" | "denied" | "blocked"
    call_id: str
    permission: str
    principal: Principal
    message: str
    view: ToolkitView | None = None
    approval: approvals.ApprovalRecord | None = None


class Gate:
    def __init__(
        self,
        sessions: async_sessionmaker[AsyncSession],
        authenticator: Authenticator,
        catalogue: Catalogue,
        audit: AuditLog,
        redactor: Redactor,
        ttls: approvals.TTLs,
        guard: WriteGuard,
    ) -> None:
        self._sessions = sessions
        self.authenticator = authenticator
        self.catalogue = catalogue
        self._audit = audit
        self._redactor = redactor
        self._ttls = ttls
        self.guard = guard
        # Conditions of each org's live policy version (ADR 0021); the server sets a cached one.
        self.conditions = OrgConditions(sessions, 0.0)
        # Set by the server so approval watchers hear about new requests at once.
        self.on_approval_change: Callable[[], None] = lambda: None

    async def list_named(
        self, credential: str, org_slug: str, toolkit_slug: str, names: list[str]
    ) -> tuple[Principal, ToolkitView, tuple[ResolvedTool, ...]]:
        """The named tools the caller may list (unknown and blocked ones left out), in the order asked."""
        principal = await self.authenticator.authenticate(credential)
        wanted = list(dict.fromkeys(names))
        if len(wanted) > tool_pages.MAX_NAMED_LOOKUPS:
            read = self.catalogue.view(principal, org_slug, toolkit_slug)
        else:
            read = tool_pages.read_named(
                lambda name: self.catalogue.view_of_tool(principal, org_slug, toolkit_slug, name), wanted
            )
        view = await self._listed(principal, read)
        chosen = (view.tools.get(name) for name in wanted)
        return principal, view, tuple(t for t in chosen if t is not None and t.effective.permission != "blocked")

    async def list_page(
        self, credential: str, org_slug: str, toolkit_slug: str, size: int, token: str
    ) -> tuple[Principal, ToolkitView, tuple[ResolvedTool, ...], str]:
        """One ListTools page (all listed tools when `size` is 0) and the next page's token."""
        principal = await self.authenticator.authenticate(credential)
        if size <= 0:
            whole = await self._listed(principal, self.catalogue.view(principal, org_slug, toolkit_slug))
            return principal, *tool_pages.whole(whole, token)

        def run(after: str, limit: int) -> Awaitable[ToolkitView]:
            return self._listed(principal, self.catalogue.run_after(principal, org_slug, toolkit_slug, after, limit))

        return principal, *await tool_pages.read_page(run, size, token)

    async def _listed(self, principal: Principal, read: Awaitable[ToolkitView]) -> ToolkitView:
        """A read of the toolkit as the caller sees it (whole, named tools or a name range),
        with the listing hook applied: every listing goes through here."""
        return await self._listing_hook(principal, await read)

    async def _listing_hook(self, principal: Principal, view: ToolkitView) -> ToolkitView:
        """A tool that a policy condition (ADR 0021) can allow is listed though its rule blocks it."""
        policy = await self.conditions.policy(principal.org_id)
        if not policy.rules:
            return view
        toolkit, consumer = f"{view.org_slug}/{view.slug}", principal.org_id != view.org_id
        changed = {}
        for name, tool in view.tools.items():
            shown = listed(policy, toolkit, name, principal.role, tool.effective, consumer)
            if shown != tool.effective:
                changed[name] = dataclasses.replace(tool, effective=shown)
        if not changed:
            return view
        return with_tools(view, {name: changed.get(name, tool) for name, tool in view.tools.items()})

    async def authorize(
        self,
        service: ServiceCaller,
        credential: str,
        org_slug: str,
        toolkit_slug: str,
        tool: str,
        arguments_json: str,
        facts: RequestFacts,
    ) -> Authorization:
        call_id = new_id()
        try:
            arguments = json.loads(arguments_json) if arguments_json else {}
        except ValueError as exc:
            raise InvalidArgument("arguments are not valid JSON", "ARGUMENTS_JSON") from exc
        if not isinstance(arguments, dict):
            raise InvalidArgument("arguments must be a JSON object", "ARGUMENTS_TYPE")
        request_payload = {"name": tool, "arguments": arguments}
        base = self._row(call_id, facts, org_slug, toolkit_slug, tool, "tools/call", request_payload)
        base["service_id"] = service.id
        try:
            principal = await self.authenticator.authenticate(credential)
            view = await self.catalogue.view_of_tool(principal, org_slug, toolkit_slug, tool)
        except (Unauthenticated, NotFound) as exc:
            status = "unauthenticated" if isinstance(exc, Unauthenticated) else "not_found"
            await self._audit.insert(self._finished(base, status=status, error=f"{exc.reason}: {exc.message}"))
            raise
        base |= self._actor(principal)
        resolved = view.tools.get(tool)
        if resolved is None:
            return await self._final(base, principal, "blocked", "", "invalid", f"Unknown tool: {tool}")
        decided = await self._conditions_hook(principal, view, resolved, arguments)
        permission = decided.permission
        base |= {"permission": permission, "rule": decided.rule}
        if permission == "blocked":
            msg = f"Tool '{tool}' is blocked {_BLOCKED_BY.get(resolved.effective.source, 'for you')}."
            if decided.error:
                msg = f"Tool '{tool}' is blocked: rule {decided.rule!r} failed closed ({decided.error})."
            elif decided.rule:
                msg = f"Tool '{tool}' is blocked by policy rule {decided.rule!r}."
            return await self._final(base, principal, "blocked", permission, "blocked", msg)
        if permission == "always_allow":
            await self._audit.insert(base | {"decision": "allow", "status": "started"})
            return Authorization("allow", call_id, permission, principal, "", view=view)
        return await self._needs_approval(base, principal, view, resolved, arguments)

    async def _conditions_hook(
        self, principal: Principal, view: ToolkitView, resolved: ResolvedTool, arguments: dict[str, Any]
    ) -> Decision:
        """Policy conditions (ADR 0021) refine the tool's effective permission for this call."""
        return await self.conditions.decide(
            principal,
            f"{view.org_slug}/{view.slug}",
            resolved.name,
            arguments,
            resolved.effective,
            consumer=principal.org_id != view.org_id,
            now=utcnow(),
        )

    async def _approval_policy_hook(
        self, principal: Principal, view: ToolkitView, tool: ResolvedTool, arguments: dict[str, Any], rule: str
    ) -> tuple[Frozen | None, Facts]:
        """The approval policy in the caller org's live policy (ADR 0021): the deciding
        condition's, else the tool's; and the facts a granted window's condition is checked against."""
        toolkit = f"{view.org_slug}/{view.slug}"
        policy = await self.conditions.policy(principal.org_id)
        found = policy.rule_approvals.get(rule) or policy.approvals.get((toolkit, tool.name))
        facts = facts_of(principal, toolkit, tool.name, arguments, utcnow())
        return (Frozen.of(found) if found is not None else None), facts

    async def _needs_approval(
        self, base: dict[str, Any], principal: Principal, view: ToolkitView, tool: ResolvedTool, arguments: Any
    ) -> Authorization:
        if not principal.org_id:
            # Approvals belong to the caller's org and its admins decide them: the operator has neither.
            message = (
                f"Tool '{tool.name}' needs an org admin's approval, and the operator token belongs to no org. "
                "Call it with a credential of an org member."
            )
            return await self._final(base, principal, "denied", "needs_approval", "denied", message)
        canonical = canonical_json(arguments)
        redacted_args, _ = self._redactor.to_stored_text(arguments)
        policy, facts = await self._approval_policy_hook(principal, view, tool, arguments, base.get("rule", ""))
        binding = approvals.Binding(
            org_id=principal.org_id,
            principal=principal,
            toolkit_id=view.toolkit_id,
            tool=tool.name,
            arguments_json=redacted_args,
            arguments_sha256=arguments_sha256(canonical),
            arguments_exact=canonical,
            policy=policy,
            facts=facts,
        )
        async with self.guard(), self._sessions() as session, session.begin():
            outcome = await recall.settle(session, binding, base["call_id"], self._ttls)
            row = base | {"decision": outcome.decision, "approval_id": outcome.approval_id}
            if outcome.decision == "allow":
                # The approval and the audit row commit together: a consumed approval always has its row.
                await self._audit.stage(session, row | {"status": "started"})
            else:
                error = outcome.message if outcome.decision == "denied" else ""
                await self._audit.stage(session, self._finished(row, status=outcome.status, error=error))
        self.on_approval_change()
        async with self._sessions() as session:
            record = await approvals.load(session, outcome.approval_id)
            if record.row.status == "pending":  # the requester is told where the request went
                record = replace(record, notified=await notification_channels.summaries(session, record.row.org_id))
        return Authorization(
            outcome.decision, base["call_id"], "needs_approval", principal, outcome.message, view=view, approval=record
        )

    async def complete(
        self, service: ServiceCaller, call_id: str, status: str, response_json: str, error: str, duration_ms: float
    ) -> None:
        """Appends the call's completion record. Only the service identity that was allowed to
        run the call may complete it, and only once (a unique index backs the second rule)."""
        if status not in FINAL_CALL_STATUSES:
            raise InvalidArgument(f"unknown call status {status!r}", "STATUS")
        response, paths = self._redactor.redact_json_text(response_json, RESPONSE_ROOT)
        completion = Completion(
            call_id=new_id(),
            completes=call_id,
            service_id=service.id,
            response_payload=response,
            redacted_paths=_paths_json(paths),
            status=status,
            error=error[:4000],
            duration_ms=duration_ms,
            at=utcnow(),
        )
        try:
            await self._audit.complete(completion)
        except CallNotStarted:
            raise NotFound("no started call with this id for this service", "CALL_NOT_FOUND") from None
        except CompletionConflict:
            raise FailedPrecondition("this call was already completed", "CALL_ALREADY_COMPLETED") from None

    async def approval_status(self, credential: str, approval_id: str) -> approvals.ApprovalRecord:
        """The MCP `approval_status` lookup. The operator belongs to no org there (ADR 0035): it
        requested no approval, so it finds none (the admin API's GetApproval still shows them)."""
        principal = await self.authenticator.authenticate(credential)
        if principal.is_operator:
            raise NotFound("approval not found", "APPROVAL_NOT_FOUND")
        return await self.approval_status_for(principal, approval_id)

    async def approval_status_for(self, principal: Principal, approval_id: str) -> approvals.ApprovalRecord:
        """The approval, if `principal` requested it or administers its org; else NotFound."""
        if not _APPROVAL_ID.fullmatch(approval_id):  # never sent to the database as is
            raise NotFound("approval not found", "APPROVAL_NOT_FOUND")
        async with self._sessions() as session, session.begin():
            await approvals.expire_stale(session, Approval.id == approval_id)
        async with self._sessions() as session:
            try:
                record = await approvals.load(session, approval_id)
            except NotFound:
                record = None
        if record is None or not approvals.may_view(record, principal):
            raise NotFound("approval not found", "APPROVAL_NOT_FOUND")
        return approvals.for_viewer(record, principal)

    async def record(
        self,
        service: ServiceCaller,
        credential: str,
        org_slug: str,
        toolkit_slug: str,
        method: str,
        tool: str,
        request: Any,
        response_json: str,
        status: str,
        error: str,
        duration_ms: float,
        facts: RequestFacts,
    ) -> str:
        if not _RECORD_STATUS.fullmatch(status) or status == "started":
            raise InvalidArgument(f"bad status {status[:40]!r} for a recorded request", "STATUS")
        if method == "tools/call" and status == "ok" and tool != BUILT_IN_TOOL:
            # Executed tool calls are written only by AuthorizeToolCall and CompleteToolCall.
            raise InvalidArgument("a recorded tools/call cannot claim the tool ran", "STATUS")
        call_id = new_id()
        row = self._row(call_id, facts, org_slug, toolkit_slug, tool, method, request)
        row["service_id"] = service.id
        try:
            row |= self._actor(await self.authenticator.authenticate(credential))
        except PolicyError:
            pass
        row = _with_response(row, *self._redactor.redact_json_text(response_json, RESPONSE_ROOT))
        await self._audit.insert(self._finished(row, status=status, error=error, duration_ms=duration_ms))
        return call_id

    async def record_admin_action(self, row: dict[str, Any]) -> None:
        """Writes an admin action's row (`admin_action_row`) to the audit log."""
        await self._audit.insert(row)

    def admin_action_row(
        self,
        principal: Principal | None,
        source: str,
        method: str,
        request: Any,
        status: str,
        error: str,
        facts: RequestFacts,
        org_slug: str | None = None,
        change: dict[str, Any] | None = None,
    ) -> dict[str, Any]:
        """One audit row per admin action (decisions, key, permission and toolkit changes,
        sign-ins), in the same chain as MCP requests, with the channel it came through.
        `change` (the object's before/after) is the row's response: hashed like any other.
        Written by `record_admin_action`, or staged in a caller's own transaction
        (`AuditLog.stage`) so that a change and its row commit together or not at all."""
        row = self._row(new_id(), facts, "", "", "", method, request)
        if change is not None:
            row = _with_response(row, *self._redactor.to_stored_text(change, CHANGE_ROOT))
        row["source"] = source
        if principal is not None:
            row |= self._actor(principal)
        if org_slug:
            row["org_slug"] = org_slug[:63]
        return self._finished(row, status=status, error=error)

    async def _final(
        self, base: dict[str, Any], principal: Principal, decision: str, permission: str, status: str, message: str
    ) -> Authorization:
        await self._audit.insert(self._finished(base | {"decision": decision}, status=status, error=message))
        return Authorization(decision, base["call_id"], permission, principal, message)

    def _row(
        self, call_id: str, facts: RequestFacts, org_slug: str, toolkit_slug: str, tool: str, method: str, request: Any
    ) -> dict[str, Any]:
        payload, paths = self._redactor.to_stored_text(request, REQUEST_ROOT)
        return {
            "call_id": call_id,
            "source": "mcp",
            "toolkit_org_slug": org_slug[:63],
            "toolkit_slug": toolkit_slug[:63],
            "tool": tool[:128],
            "method": method[:64],
            "request_payload": payload,
            "redacted_paths": _paths_json(paths),
            "client_address": facts.client_address[:64],
            "user_agent": facts.user_agent[:512],
            "request_id": facts.request_id[:64],
            "created_at": utcnow(),
            "trace_id": current_trace_id(),
        }

    @staticmethod
    def _actor(principal: Principal) -> dict[str, Any]:
        return {
            "org_slug": principal.org_slug,
            "actor_type": principal.kind,
            "actor_id": principal.id,
            "actor_display": principal.display[:320],
        }

    @staticmethod
    def _finished(row: dict[str, Any], status: str, error: str = "", duration_ms: float = 0.0) -> dict[str, Any]:
        return row | {"status": status, "error": error[:4000], "duration_ms": duration_ms, "completed_at": utcnow()}


def _paths_json(paths: list[str]) -> str:
    """The redacted paths as the row stores them (JSON); nearly always none."""
    return json.dumps(paths) if paths else "[]"


def _with_response(row: dict[str, Any], text: str, paths: list[str]) -> dict[str, Any]:
    """The row with its response stored, whose redacted paths join the request's."""
    if paths:
        row = row | {"redacted_paths": json.dumps([*json.loads(row["redacted_paths"]), *paths])}
    return row | {"response_payload": text}


def approval_ttls(pending_seconds: int, approved_seconds: int) -> approvals.TTLs:
    return approvals.TTLs(pending=timedelta(seconds=pending_seconds), approved=timedelta(seconds=approved_seconds))
